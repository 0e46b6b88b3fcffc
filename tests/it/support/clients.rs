//! Real installers: a venv with the newest pip and uv from the package registry, made once and
//! kept under cargo's target folder (a file lock keeps concurrent test processes from racing).
//! Installs through pipwall run with an environment scrubbed of every pip and uv setting, so
//! only pipwall is asked.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

pub struct Clients {
    pub venv: PathBuf,
}

static CLIENTS: OnceLock<Clients> = OnceLock::new();

/// The shared venv, created on first use. Set-up needs the package registry (reached through
/// the machine's own pip configuration); the tests themselves never do.
pub fn clients() -> &'static Clients {
    CLIENTS.get_or_init(|| {
        let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-venv");
        std::fs::create_dir_all(venv.parent().unwrap()).unwrap();
        let lock = std::fs::File::create(venv.with_extension("lock")).unwrap();
        lock.lock().unwrap();
        let ready = venv.join(".pipwall-ready");
        if !ready.exists() {
            let _ = std::fs::remove_dir_all(&venv);
            run_setup(
                std::process::Command::new("python3")
                    .args(["-m", "venv"])
                    .arg(&venv),
            );
            run_setup(std::process::Command::new(venv.join("bin/python")).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--upgrade",
                "pip",
                "uv",
            ]));
            std::fs::write(&ready, "").unwrap();
        }
        lock.unlock().unwrap();
        Clients { venv }
    })
}

fn run_setup(cmd: &mut std::process::Command) {
    let out = cmd.output().expect("cannot run the e2e set-up");
    assert!(
        out.status.success(),
        "e2e set-up failed: {cmd:?}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What an installer run printed, and whether it succeeded.
pub struct Run {
    pub ok: bool,
    pub output: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            ok: o.status.success(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        }
    }
}

impl Clients {
    pub fn python(&self) -> PathBuf {
        self.venv.join("bin/python")
    }

    fn scrubbed(&self, program: &Path, home: &Path) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(program);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("PIP_")
                || k.starts_with("UV_")
                || k == "SSL_CERT_FILE"
                || k.ends_with("_PROXY")
                || k.ends_with("_proxy")
            {
                cmd.env_remove(k);
            }
        }
        cmd.env("PIP_CONFIG_FILE", "/dev/null")
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PIP_NO_INPUT", "1")
            .env("UV_NO_CONFIG", "1")
            .env("UV_CACHE_DIR", home.join("uv-cache"))
            .env("HOME", home)
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .kill_on_drop(true);
        cmd
    }

    /// `pip <args…> --index-url <index>` with a fresh cache.
    pub async fn pip(&self, index: &str, home: &Path, args: &[&str]) -> Run {
        self.pip_env(index, home, args, &[]).await
    }

    /// [`Self::pip`] with extra environment variables (e.g. `SSL_CERT_FILE`).
    pub async fn pip_env(
        &self,
        index: &str,
        home: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Run {
        let mut cmd = self.scrubbed(&self.python(), home);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(["-m", "pip"]).args(args).args([
            "--index-url",
            index,
            "--cache-dir",
            &home.join("pip-cache").display().to_string(),
            "--retries",
            "0",
            "--timeout",
            "30",
        ]);
        cmd.output().await.expect("cannot run pip").into()
    }

    /// `uv pip install --target <target> <args…>` against `index`.
    pub async fn uv_install(&self, index: &str, home: &Path, target: &Path, args: &[&str]) -> Run {
        let mut cmd = self.scrubbed(&self.venv.join("bin/uv"), home);
        cmd.args(["pip", "install", "--no-progress", "--target"])
            .arg(target)
            .arg("--python")
            .arg(self.python())
            .args(["--index-url", index])
            .args(args);
        cmd.output().await.expect("cannot run uv").into()
    }
}

/// The version an installed fixture module reports, read from `<target>/<module>/__init__.py`.
pub fn installed_version(target: &Path, module: &str) -> Option<String> {
    let text = std::fs::read_to_string(target.join(module).join("__init__.py")).ok()?;
    text.split('\'').nth(1).map(str::to_owned)
}

/// The installers the end-to-end tests drive.
#[derive(Clone, Copy, Debug)]
pub enum Installer {
    Pip,
    Uv,
}

pub const INSTALLERS: [Installer; 2] = [Installer::Pip, Installer::Uv];

impl Clients {
    /// Installs into the folder `target` with `installer` (`pip install --target` or
    /// `uv pip install --target`), `args` being the requirements and any extra options.
    pub async fn install(
        &self,
        installer: Installer,
        index: &str,
        home: &Path,
        target: &Path,
        args: &[&str],
    ) -> Run {
        match installer {
            Installer::Pip => {
                let target = target.display().to_string();
                let mut all = vec!["install", "--target", target.as_str()];
                all.extend_from_slice(args);
                self.pip(index, home, &all).await
            }
            Installer::Uv => self.uv_install(index, home, target, args).await,
        }
    }
}

/// The shared venv with poetry and pdm added (`pip install poetry "pdm[locked]"`, once, under
/// the same lock as the venv; a second marker so a venv made before they were needed gets them
/// too). PDM's `locked` extra pins the libraries it was released with.
pub fn project_tools() -> &'static Clients {
    static TOOLS: OnceLock<()> = OnceLock::new();
    let c = clients();
    TOOLS.get_or_init(|| {
        let lock = std::fs::File::create(c.venv.with_extension("lock")).unwrap();
        lock.lock().unwrap();
        let ready = c.venv.join(".pipwall-ready-poetry-pdm");
        if !ready.exists() {
            run_setup(std::process::Command::new(c.python()).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "poetry",
                "pdm[locked]",
            ]));
            std::fs::write(&ready, "").unwrap();
        }
        lock.unlock().unwrap();
    });
    c
}

/// A proxy address nothing listens on: every tool run by [`Clients::isolated`] sends any
/// request for a host other than loopback there, so it fails at once instead of reaching an
/// index on the internet.
const DEAD_PROXY: &str = "http://127.0.0.1:9";

impl Clients {
    /// A command for `program` (a name in the venv's `bin`, or a path) with an empty
    /// environment but for: `PATH` starting at the venv, `HOME` and every XDG folder under
    /// `home` (no user or system configuration, no shared cache), proxies that refuse every host
    /// but loopback, and switches that keep the tools from prompting or looking for updates.
    /// Index settings come only from the configuration a test puts under `home` or passes.
    pub fn isolated(&self, program: &str, home: &Path) -> tokio::process::Command {
        let exe = if program.contains('/') {
            PathBuf::from(program)
        } else {
            self.venv.join("bin").join(program)
        };
        let mut cmd = tokio::process::Command::new(exe);
        cmd.env_clear()
            .env(
                "PATH",
                format!(
                    "{}:/usr/local/bin:/usr/bin:/bin",
                    self.venv.join("bin").display()
                ),
            )
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_STATE_HOME", home.join("state"))
            .env("XDG_CONFIG_DIRS", home.join("xdg-config"))
            .env("XDG_DATA_DIRS", home.join("xdg-data"))
            .env("LANG", "C.UTF-8")
            .env("NO_COLOR", "1")
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PIP_NO_INPUT", "1")
            .env("UV_PYTHON_DOWNLOADS", "never")
            .env("POETRY_NO_INTERACTION", "1")
            .env("PDM_CHECK_UPDATE", "false")
            .env("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
            .kill_on_drop(true);
        for var in ["http_proxy", "https_proxy", "all_proxy"] {
            cmd.env(var, DEAD_PROXY).env(var.to_uppercase(), DEAD_PROXY);
        }
        for var in ["no_proxy", "NO_PROXY"] {
            cmd.env(var, "127.0.0.1,localhost,::1");
        }
        cmd
    }

    /// Runs `program args…` in `cwd` under [`Self::isolated`], with `env` added.
    pub async fn run_isolated(
        &self,
        program: &str,
        home: &Path,
        cwd: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Run {
        let mut cmd = self.isolated(program, home);
        cmd.current_dir(cwd).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output()
            .await
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
            .into()
    }
}

/// The version a fixture module reports once installed in the virtualenv `venv`
/// (`venv/lib/python3.*/site-packages/<module>/__init__.py`).
pub fn venv_installed_version(venv: &Path, module: &str) -> Option<String> {
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    lib.flatten()
        .map(|e| e.path().join("site-packages"))
        .find_map(|site| installed_version(&site, module))
}
