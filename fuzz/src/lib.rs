//! The entry points of the fuzz targets in `fuzz_targets/`, one function per
//! target, so that a target file is one line and the same code can be
//! replayed outside libFuzzer.
//!
//! [`bytes`] holds the targets whose input is raw text (response bodies, key
//! files, assertions); [`structured`] those whose input `arbitrary` decodes
//! into a whole exchange.

pub mod bytes;
pub mod structured;
