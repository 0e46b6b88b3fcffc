//! The real `pipwall serve` binary, for what only a process shows: flags, signals, stderr.

/// The real binary, reading its stderr on a thread; lines arrive on the channel.
pub struct Served {
    pub child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// The first index URL it printed (`http://ADDR/simple/` or `https://…`), and its address.
    pub url: String,
    pub addr: std::net::SocketAddr,
}

impl Served {
    /// `pipwall serve --listen 127.0.0.1:0` with `args`.
    pub fn start(args: &[&str]) -> Self {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pipwall"));
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args);
        Self::spawn(cmd)
    }

    /// Runs `cmd` (a `pipwall serve`) until it says where it serves.
    pub fn spawn(mut cmd: std::process::Command) -> Self {
        use std::io::BufRead;
        let mut child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut served = Self {
            child,
            lines,
            url: String::new(),
            addr: "127.0.0.1:1".parse().unwrap(),
        };
        let line = served.wait_for("pipwall: serving ");
        served.url = line
            .split_whitespace()
            .nth(2)
            .expect("no address")
            .to_owned();
        served.addr = served
            .url
            .split("://")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .unwrap()
            .parse()
            .unwrap();
        served
    }

    /// The next stderr line containing `text`; after 30 s, panics with the lines seen.
    pub fn wait_for(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(text) => return l,
                Ok(l) => seen.push(l),
                Err(e) => panic!(
                    "pipwall printed no line with {text:?} ({e}):\n{}",
                    seen.join("\n")
                ),
            }
        }
    }

    pub fn hangup(&self) {
        let ok = std::process::Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `pipwall serve --listen 127.0.0.1:0` with `args`, which must refuse to start: its
/// standard error.
pub fn serve_refuses(args: &[&std::ffi::OsStr]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipwall"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "serve started: {err}");
    err
}

/// The filenames a project page lists (JSON), asked with the given request headers.
pub async fn listed_files(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Vec<String> {
    let mut all = vec![("Accept", "application/vnd.pypi.simple.v1+json")];
    all.extend_from_slice(headers);
    let r = super::pipwall::raw_get_with(addr, path, &all).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    let json: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap().to_owned())
        .collect()
}
