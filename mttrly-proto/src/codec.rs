//! The codec every generated service and client uses: prost's, with smaller initial message
//! buffers.
//!
//! tonic gives each call an encode buffer and a decode buffer of 8 KB up front (its default), and
//! a call lives as long as it streams. An agent's session is one call that lives for days and
//! mostly carries heartbeats of a few hundred bytes, so for a fleet of tens of thousands those two
//! buffers were 16 KB of central's memory per agent (measured in BENCHMARKS.md's "Fleet"
//! section). Starting at 1 KB changes nothing else: a buffer grows to the largest message it
//! carries (a multi-MB file tail included, up to the message size limits), and the yield
//! threshold that keeps large streams fair is tonic's.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// The initial size of a call's encode and decode buffers.
pub const INITIAL_BUFFER_BYTES: usize = 1024;
/// Encoded bytes gathered before a streaming response yields them to the transport (tonic's
/// default).
pub const YIELD_THRESHOLD_BYTES: usize = 32 * 1024;

fn settings() -> BufferSettings {
    BufferSettings::new(INITIAL_BUFFER_BYTES, YIELD_THRESHOLD_BYTES)
}

/// Prost encoding with [`INITIAL_BUFFER_BYTES`] buffers; named by `build.rs` as the codec of
/// every generated service and client.
#[derive(Debug, Clone, Copy)]
pub struct SmallBufferCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for SmallBufferCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for SmallBufferCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(settings())
    }
}

#[cfg(test)]
mod tests {
    use tonic::codec::{Decoder as _, Encoder as _};

    use super::*;

    #[test]
    fn both_halves_start_small_and_keep_tonics_yield_threshold() {
        let mut codec = SmallBufferCodec::<prost_types::Duration, prost_types::Duration>::default();
        // tonic's settings expose their fields only through `Debug`.
        let expected = format!(
            "BufferSettings {{ buffer_size: {INITIAL_BUFFER_BYTES}, yield_threshold: {YIELD_THRESHOLD_BYTES} }}"
        );
        assert_eq!(format!("{:?}", codec.encoder().buffer_settings()), expected);
        assert_eq!(format!("{:?}", codec.decoder().buffer_settings()), expected);
        assert_ne!(format!("{:?}", BufferSettings::default()), expected, "tonic's default is what this changes");
    }
}
