//! Helpers to run `snap2p` as a user would: separate processes, pipes or a pseudo-
//! terminal, every wait bounded.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_snap2p");
pub const WAIT: Duration = Duration::from_secs(30);

/// A fresh wallet directory per test, so tests never touch ~/.snap2p.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

pub fn cmd(wallet_dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env("SNAP2P_WALLET_DIR", wallet_dir)
        .env_remove("SNAP2P_PASSWORD")
        .env_remove("SNAP2P_INVITES_FILE")
        .env_remove("SNAP2P_CONFIG")
        .env_remove("SNAP2P_MNEMONIC");
    c
}

/// Runs to completion with `stdin` piped in; killed after `WAIT`.
pub fn run(mut c: Command, stdin: &str) -> Output {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn snap2p");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    let deadline = Instant::now() + WAIT;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "snap2p did not finish in time\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Collects what a stream prints, in a thread, so tests can wait for a line.
#[derive(Clone, Default)]
pub struct Collected(Arc<Mutex<String>>);

impl Collected {
    pub fn spawn(r: impl Read + Send + 'static) -> Self {
        let c = Collected::default();
        let inner = c.0.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(r);
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                inner.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        c
    }

    pub fn spawn_raw(mut r: impl Read + Send + 'static) -> Self {
        let c = Collected::default();
        let inner = c.0.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                inner
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        c
    }

    pub fn get(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    /// Waits until the output contains `needle`; returns the whole output.
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.get();
            if s.contains(needle) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {needle:?}; got:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A background `snap2p` (listen) with piped stdin and collected output; killed on drop.
pub struct Bg {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub out: Collected,
    pub err: Collected,
}

impl Bg {
    pub fn spawn(mut c: Command) -> Bg {
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn snap2p");
        let stdin = child.stdin.take();
        let out = Collected::spawn(child.stdout.take().unwrap());
        let err = Collected::spawn(child.stderr.take().unwrap());
        Bg {
            child,
            stdin,
            out,
            err,
        }
    }

    pub fn send_line(&mut self, line: &str) {
        let s = self.stdin.as_mut().expect("stdin open");
        writeln!(s, "{line}").unwrap();
        s.flush().unwrap();
    }

    pub fn wait(&mut self) -> ExitStatus {
        wait_child(&mut self.child)
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_child(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `snap2p listen 127.0.0.1:0 ARGS…` and returns it with its bound address.
pub fn listener(wallet_dir: &Path, args: &[&str]) -> (Bg, String) {
    let mut c = cmd(wallet_dir);
    c.args(["listen", "127.0.0.1:0"]).args(args);
    let bg = Bg::spawn(c);
    let out = bg.out.wait_for("Listening on ");
    let addr = out
        .split("Listening on ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("address")
        .to_string();
    (bg, addr)
}

/// The principal a command announced with `* I am stacks:…`.
pub fn announced_principal(stderr: &str) -> String {
    stderr
        .split("* I am ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("I am line")
        .to_string()
}

/// A child on a pseudo-terminal (its controlling terminal, so `/dev/tty` prompts work).
pub struct Pty {
    pub child: Child,
    master: std::fs::File,
    pub out: Collected,
}

impl Pty {
    pub fn spawn(mut c: Command) -> Pty {
        use std::os::unix::process::CommandExt;
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let slave: OwnedFd = pty.slave;
        let master: OwnedFd = pty.master;
        c.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        unsafe {
            c.pre_exec(|| {
                // New session with the pty as controlling terminal.
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                if nix::libc::ioctl(0, nix::libc::TIOCSCTTY as _, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = c.spawn().expect("spawn on pty");
        drop(c); // closes our copies of the slave end
        let master = std::fs::File::from(master);
        let out = Collected::spawn_raw(master.try_clone().unwrap());
        Pty { child, master, out }
    }

    /// Types `s` one key at a time, as a person does. (A whole line in one write looks
    /// like a paste to the line editor, which then waits for the rest of the paste.)
    pub fn send(&mut self, s: &str) {
        for b in s.as_bytes() {
            self.master.write_all(std::slice::from_ref(b)).unwrap();
            self.master.flush().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(15));
        }
    }

    pub fn fd(&self) -> i32 {
        self.master.as_raw_fd()
    }

    pub fn wait(&mut self) -> ExitStatus {
        wait_child(&mut self.child)
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../core/tests/vectors")
}
