//! Reading the files that hold secrets: key files, client secret files and
//! personal access token files.
//!
//! Every such file is opened once, checked on the open handle (so the file
//! checked is the file read), capped in size, and read into a buffer that is
//! wiped when dropped. On Unix a file readable or writable by group or
//! others is refused, as ssh refuses such keys, unless the configuration
//! explicitly allows it.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use zeroize::{Zeroize, Zeroizing};

use super::Error;

/// The largest file read as a secret or key: far above any real one (an
/// RSA-8192 key file is about 7 KiB), and small enough that a wrong path
/// (a log file, a device) fails fast.
pub(super) const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// A file named in the configuration, with the environment variable that
/// named it, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct FileRef {
    pub(super) path: PathBuf,
    pub(super) variable: Option<&'static str>,
}

impl FileRef {
    pub(super) fn new(path: impl Into<PathBuf>, variable: Option<&'static str>) -> Self {
        Self {
            path: path.into(),
            variable,
        }
    }
}

/// Reads the file as UTF-8 text, checking its permissions unless
/// `allow_shared` is set. `what` names the file in errors ("key file", …).
pub(super) fn read_private_text(
    file: &FileRef,
    what: &'static str,
    allow_shared: bool,
) -> Result<Zeroizing<String>, Error> {
    let FileRef { path, variable } = file;
    let variable = *variable;
    let unreadable = |error: std::io::Error| Error::FileUnreadable {
        what,
        path: path.clone(),
        variable,
        kind: error.kind(),
    };
    let handle = File::open(path).map_err(unreadable)?;
    let metadata = handle.metadata().map_err(unreadable)?;
    if !allow_shared {
        check_private_permissions(path, &metadata).map_err(|mode| Error::FilePermissions {
            what,
            path: path.clone(),
            variable,
            mode,
        })?;
    }
    let too_large = || Error::FileTooLarge {
        what,
        path: path.clone(),
        variable,
        limit: MAX_SECRET_FILE_BYTES,
    };
    if metadata.len() > MAX_SECRET_FILE_BYTES {
        return Err(too_large());
    }

    // One byte over the cap tells a file that grew since `metadata` apart;
    // the capacity covers it, so reading never reallocates (and never leaves
    // an unwiped copy behind).
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_SECRET_FILE_BYTES as usize + 1));
    handle
        .take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(too_large());
    }
    tracing::debug!(path = %path.display(), bytes = bytes.len(), what, "read secret file");
    into_text(bytes).ok_or_else(|| Error::FileNotText {
        what,
        path: path.clone(),
        variable,
    })
}

/// Reads a file that holds one secret value (a client secret or a personal
/// access token): the whole file less one trailing line break (`\n` or
/// `\r\n`), as `echo` and editors leave one.
pub(super) fn read_secret_value(
    file: &FileRef,
    what: &'static str,
    allow_shared: bool,
) -> Result<Zeroizing<String>, Error> {
    let mut text = read_private_text(file, what, allow_shared)?;
    trim_one_line_break(&mut text);
    if text.is_empty() {
        return Err(Error::FileEmpty {
            what,
            path: file.path.clone(),
            variable: file.variable,
        });
    }
    Ok(text)
}

/// Removes one trailing `\n` or `\r\n`. The removed bytes stay in the
/// buffer's spare capacity, which `Zeroizing` wipes with the rest.
pub(super) fn trim_one_line_break(text: &mut String) {
    if text.ends_with("\r\n") {
        text.truncate(text.len() - 2);
    } else if text.ends_with('\n') {
        text.truncate(text.len() - 1);
    }
}

/// `Err(mode)` when group or others have any access to the file.
#[cfg(unix)]
fn check_private_permissions(_path: &Path, metadata: &std::fs::Metadata) -> Result<(), u32> {
    use std::os::unix::fs::PermissionsExt;

    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 == 0 { Ok(()) } else { Err(mode) }
}

/// Windows and other platforms have no Unix mode bits; their access
/// control lists are not checked.
#[cfg(not(unix))]
fn check_private_permissions(_path: &Path, _metadata: &std::fs::Metadata) -> Result<(), u32> {
    Ok(())
}

/// Turns bytes into text without copying them, or `None` (with the bytes
/// wiped) when they are not UTF-8.
fn into_text(mut bytes: Zeroizing<Vec<u8>>) -> Option<Zeroizing<String>> {
    let taken = std::mem::take(&mut *bytes);
    match String::from_utf8(taken) {
        Ok(text) => Some(Zeroizing::new(text)),
        Err(error) => {
            let mut rejected = error.into_bytes();
            rejected.zeroize();
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_line_break_is_trimmed() {
        for (input, want) in [
            ("s3cret", "s3cret"),
            ("s3cret\n", "s3cret"),
            ("s3cret\r\n", "s3cret"),
            ("s3cret\n\n", "s3cret\n"),
            ("\n", ""),
        ] {
            let mut text = input.to_owned();
            trim_one_line_break(&mut text);
            assert_eq!(text, want, "{input:?}");
        }
    }
}
