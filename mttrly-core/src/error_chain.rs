//! Printing an error with every cause behind it.
//!
//! Errors in mttrly follow omicron's rule: an inner error is either a `#[source]` or part of the
//! message, never both. The price is that `Display` alone shows only the outermost context
//! ("invalid configuration"), so every place that shows an error to a person (the binaries'
//! error output, logs) walks the chain with [`ErrorChain`] instead.

use std::error::Error;
use std::fmt;

use crate::error::{ErrorCode, MttrlyError};

/// `outer: inner: innermost`, every link once.
///
/// A seed error ([`MttrlyError`]) in the chain shows only its message: its code is not prose, and
/// [`ErrorChain::code`] reports it to the caller instead.
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'static));

impl<'a> ErrorChain<'a> {
    /// The code of the outermost seed error in the chain, if any: what went wrong for a program,
    /// whatever context was wrapped around it.
    pub fn code(&self) -> Option<ErrorCode> {
        self.links().find_map(|e| e.downcast_ref::<MttrlyError>()).map(MttrlyError::code)
    }

    fn links(&self) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
        std::iter::successors(Some(self.0), |e: &&'a (dyn Error + 'static)| (*e).source())
    }
}

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, link) in self.links().enumerate() {
            if i > 0 {
                f.write_str(": ")?;
            }
            match link.downcast_ref::<MttrlyError>() {
                Some(seed) => f.write_str(seed.message())?,
                None => write!(f, "{link}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorChain;
    use crate::error::{ErrorCode, MttrlyError};

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("cannot start")]
        Start(#[source] Middle),
    }

    #[derive(Debug, thiserror::Error)]
    enum Middle {
        #[error("invalid configuration")]
        Config(#[source] MttrlyError),
        #[error("cannot read {0}")]
        Read(String, #[source] std::io::Error),
    }

    #[test]
    fn every_link_is_printed_once_in_order() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = Outer::Start(Middle::Read("/etc/x".into(), io));
        assert_eq!(ErrorChain(&err).to_string(), "cannot start: cannot read /etc/x: no such file");
        assert_eq!(ErrorChain(&err).code(), None);
    }

    #[test]
    fn a_seed_error_gives_its_message_to_the_text_and_its_code_to_the_caller() {
        let seed = MttrlyError::new(ErrorCode::ValidationError, "grpc_listen is not an address");
        let err = Outer::Start(Middle::Config(seed));
        assert_eq!(ErrorChain(&err).to_string(), "cannot start: invalid configuration: grpc_listen is not an address");
        assert_eq!(ErrorChain(&err).code(), Some(ErrorCode::ValidationError));
    }

    #[test]
    fn a_lone_error_is_its_own_display() {
        let io = std::io::Error::other("disk full");
        assert_eq!(ErrorChain(&io).to_string(), "disk full");
    }
}
