//! The sans-IO boundary, checked mechanically: the core never reads a clock
//! and never names an async runtime, an HTTP client or a socket.
//!
//! Drivers and adapters are the exceptions, listed by file.

use std::fs;
use std::path::{Path, PathBuf};

/// Files allowed to read the real clock: the clock itself, and drivers.
const CLOCK_READERS: &[&str] = &["src/time.rs"];

/// Files (or folders, ending in `/`) allowed to name tokio, reqwest, ureq or sockets:
/// the drivers, the transports, the mock's loopback server, and the
/// configuration layer that builds a transport for the user.
const IO_MODULES: &[&str] = &[
    "src/config/",
    "src/authenticator.rs",
    "src/transport/common.rs",
    "src/transport/reqwest.rs",
    "src/transport/ureq.rs",
    "src/mock/serve.rs",
];

#[test]
fn no_clock_reads_outside_the_drivers() {
    for (path, text) in sources() {
        if CLOCK_READERS.iter().any(|allowed| path.ends_with(allowed)) {
            continue;
        }
        for needle in ["Instant::now(", "SystemTime::now("] {
            for (number, line) in code_lines(&text) {
                assert!(
                    !line.contains(needle),
                    "{}:{number} reads the clock ({needle}); pass `Now` in instead",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn core_names_no_runtime_client_or_socket() {
    for (path, text) in sources() {
        let shown = path.to_string_lossy().replace('\\', "/");
        if IO_MODULES.iter().any(|allowed| shown.contains(allowed)) {
            continue;
        }
        for needle in [
            "tokio::",
            "reqwest::",
            "ureq::",
            "TcpStream",
            "TcpListener",
            "UdpSocket",
        ] {
            for (number, line) in code_lines(&text) {
                assert!(
                    !line.contains(needle),
                    "{}:{number} names `{needle}`, which belongs in a driver or adapter module",
                    path.display()
                );
            }
        }
    }
}

/// Lines of code, numbered from 1, without comments and without `#[cfg(test)]` modules.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let test_start = text.find("#[cfg(test)]").unwrap_or(text.len());
    text[..test_start]
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim_start()))
        .filter(|(_, line)| !line.starts_with("//"))
}

fn sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    collect(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src").as_path(),
        &mut files,
    );
    assert!(files.len() > 5, "found too few source files: {files:?}");
    files
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).expect("source files are readable");
            (path, text)
        })
        .collect()
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("directory entries are readable").path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}
