//! One write per fast answer: the SSE response of a POST holds its head until the answer.
//!
//! rmcp answers every request of a session as an SSE stream whose first event is a *priming*
//! event (an event id and a retry hint, no message: what a client needs to resume the stream
//! after a dropped connection) followed by the JSON-RPC answer. hyper writes what is ready when
//! the response comes out of the service, so a tool call cost two TCP writes (head + priming
//! event, then the answer and the end of the stream); under load those writes were the largest
//! single share of central's CPU per call. Here the response waits, at most [`HOLD`], for the
//! first event that carries a message; everything read so far leaves as one chunk, so a call that
//! answers in time costs one write. A slower call (an agent's task) gets its head and priming
//! event at [`HOLD`], as before, and can still resume: nothing is dropped or reordered, only
//! joined.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body::{Body as _, Frame, SizeHint};

/// The longest a response head waits for its answer: far below any client's patience for
/// headers, far above what a loaded central adds to a fast call (a few ms of queueing).
pub(crate) const HOLD: Duration = Duration::from_millis(100);

/// `response` with its leading SSE events joined up to the first message (or the end of the
/// stream, or [`HOLD`]). Other responses (JSON errors, plain answers) pass unchanged.
pub(crate) async fn coalesce_first_message(response: http::Response<Body>) -> http::Response<Body> {
    let is_sse = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
    if !is_sse {
        return response;
    }
    let (parts, mut body) = response.into_parts();
    let mut read = Vec::new();
    let mut after = After::More;
    let mut hold = std::pin::pin!(tokio::time::sleep(HOLD));
    std::future::poll_fn(|cx| {
        loop {
            match Pin::new(&mut body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        read.extend_from_slice(&data);
                        if carries_message(&data) {
                            return Poll::Ready(());
                        }
                    }
                    Err(frame) => {
                        after = After::Frame(frame);
                        return Poll::Ready(());
                    }
                },
                Poll::Ready(Some(Err(error))) => {
                    after = After::Error(error);
                    return Poll::Ready(());
                }
                Poll::Ready(None) => {
                    after = After::End;
                    return Poll::Ready(());
                }
                // The timer is only armed here, so an answer that is already there costs none.
                Poll::Pending => return hold.as_mut().poll(cx),
            }
        }
    })
    .await;
    let first = (!read.is_empty()).then(|| Bytes::from(read));
    http::Response::from_parts(parts, Body::new(Joined { first, after, rest: body }))
}

/// Whether an SSE event (as rmcp encodes them: `data: ` first) carries a JSON-RPC message; the
/// priming event's data is empty and a keep-alive is a comment.
fn carries_message(event: &[u8]) -> bool {
    event.strip_prefix(b"data: ").is_some_and(|data| data.first().is_some_and(|&b| b != b'\n'))
}

/// What the holding read saw after the joined bytes.
enum After {
    /// Nothing yet: the rest comes from the stream.
    More,
    /// A non-data frame (trailers), to pass on after the bytes.
    Frame(Frame<Bytes>),
    /// The stream failed.
    Error(axum::Error),
    /// The stream ended.
    End,
}

/// The body sent: the joined bytes as one frame, then whatever the stream had after them.
struct Joined {
    first: Option<Bytes>,
    after: After,
    rest: Body,
}

impl http_body::Body for Joined {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        match std::mem::replace(&mut self.after, After::More) {
            After::More => Pin::new(&mut self.rest).poll_frame(cx),
            After::Frame(frame) => Poll::Ready(Some(Ok(frame))),
            After::Error(error) => {
                self.after = After::End;
                Poll::Ready(Some(Err(error)))
            }
            After::End => {
                self.after = After::End;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && matches!(self.after, After::End)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse(events: Vec<Result<&'static str, std::io::Error>>, delay: Option<Duration>) -> http::Response<Body> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            for (index, event) in events.into_iter().enumerate() {
                if index == 1
                    && let Some(delay) = delay
                {
                    tokio::time::sleep(delay).await;
                }
                if tx.send(event.map(|text| Bytes::from_static(text.as_bytes()))).is_err() {
                    return;
                }
            }
        });
        http::Response::builder()
            .header(http::header::CONTENT_TYPE, "text/event-stream")
            .body(Body::new(Events(rx)))
            .expect("valid response")
    }

    /// An SSE body fed by a channel: the events one by one, as rmcp's stream yields them.
    struct Events(tokio::sync::mpsc::UnboundedReceiver<Result<Bytes, std::io::Error>>);

    impl http_body::Body for Events {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            self.0.poll_recv(cx).map(|event| event.map(|event| event.map(Frame::data)))
        }
    }

    /// The frames a client would read, in order.
    async fn frames(response: http::Response<Body>) -> Vec<Result<Vec<u8>, String>> {
        let mut body = response.into_body();
        let mut out = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            out.push(frame.map(|f| f.into_data().map(|d| d.to_vec()).unwrap_or_default()).map_err(|e| e.to_string()));
        }
        out
    }

    const PRIMING: &str = "data: \nid: 0\nretry: 3000\n\n";
    const ANSWER: &str = "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\nid: 1\n\n";

    #[tokio::test]
    async fn a_fast_answer_leaves_with_its_priming_event_as_one_frame() {
        let response = coalesce_first_message(sse(vec![Ok(PRIMING), Ok(ANSWER)], Some(Duration::from_millis(5)))).await;
        let frames = frames(response).await;
        assert_eq!(frames, vec![Ok(format!("{PRIMING}{ANSWER}").into_bytes())]);
    }

    #[tokio::test]
    async fn a_slow_answer_gets_its_head_and_priming_event_at_the_hold() {
        let started = std::time::Instant::now();
        let response =
            coalesce_first_message(sse(vec![Ok(PRIMING), Ok(ANSWER)], Some(HOLD + Duration::from_millis(400)))).await;
        let held = started.elapsed();
        assert!(held >= HOLD && held < HOLD + Duration::from_millis(400), "the head left after {held:?}");
        let frames = frames(response).await;
        assert_eq!(frames, vec![Ok(PRIMING.as_bytes().to_vec()), Ok(ANSWER.as_bytes().to_vec())]);
    }

    #[tokio::test]
    async fn a_stream_error_after_the_priming_event_still_reaches_the_client() {
        let response = coalesce_first_message(sse(vec![Ok(PRIMING), Err(std::io::Error::other("gone"))], None)).await;
        let frames = frames(response).await;
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert_eq!(frames[0], Ok(PRIMING.as_bytes().to_vec()));
        assert!(frames[1].as_ref().is_err_and(|e| e.contains("gone")), "{frames:?}");
    }

    #[tokio::test]
    async fn a_json_response_passes_unchanged() {
        let response = http::Response::builder()
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from("{\"error\":1}"))
            .expect("valid response");
        assert_eq!(frames(coalesce_first_message(response).await).await, vec![Ok(b"{\"error\":1}".to_vec())]);
    }

    #[test]
    fn only_an_event_with_data_carries_a_message() {
        assert!(carries_message(ANSWER.as_bytes()));
        assert!(!carries_message(PRIMING.as_bytes()));
        assert!(!carries_message(b":\n\n"));
    }
}
