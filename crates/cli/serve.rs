//! `prefork [flags]`: load the configuration, then hand the master its settings, the per-worker
//! handler factory and the reloader it calls on SIGHUP.

use std::process::ExitCode;
use std::sync::Arc;

use http::Request;
use prefork_server::{Handler, HandlerFactory, RequestBody};

use anyhow::Context;

use crate::args::ServeArgs;
use crate::config::{self, Config};

pub fn run(args: ServeArgs) -> ExitCode {
    let config = match config::load(&args).and_then(|c| c.server_settings().map(|s| (c, s))) {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    let (config, settings) = config;
    let process = match ProcessEnv::take() {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let settings = process.apply(settings);
    if args.print_config {
        match toml::to_string(&config) {
            Ok(text) => {
                print!("{text}");
                return ExitCode::SUCCESS;
            }
            Err(e) => return fail(&e.into()),
        }
    }
    if args.check_config {
        // An object store must be reachable with this host's credentials (deploy checks this).
        if let Some(url) = &config.store {
            // A check creates nothing on this host (no runtime, no folders kept).
            let checked = mrpt_session::object::ObjectBackend::s3(url, config::aws_vars())
                .and_then(|backend| mrpt_session::object::block_on(backend.check())?)
                .map_err(|e| anyhow::anyhow!("{}", e.to_string().replace(['\r', '\n'], " ")))
                .with_context(|| {
                    format!(
                        "store = {url:?}: the session store is not usable (check the bucket, AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_ALLOW_HTTP)"
                    )
                });
            if let Err(e) = checked {
                return fail(&e);
            }
        }
        eprintln!("Configuration OK");
        return ExitCode::SUCCESS;
    }
    // This instance's runtime folder: by default inside the instance directory, where only
    // mrpt-session creates anything; an explicit `runtime_dir` is this host's own.
    if config.metrics {
        let made = match &config.runtime_dir {
            Some(dir) => std::fs::create_dir_all(dir.join("metrics"))
                .map_err(|e| anyhow::anyhow!("create {}: {e}", dir.join("metrics").display())),
            None => mrpt_session::create_runtime_dir(
                &config.instance_dir,
                &format!("{}/metrics", config.instance_name()),
            )
            .map(drop)
            .map_err(anyhow::Error::from),
        };
        if let Err(e) = made {
            return fail(&e);
        }
    }
    let factory = handler_factory(&config);
    let reload: prefork_server::Reloader = Box::new(move || {
        let config = config::load(&args).map_err(|e| format!("{e:#}"))?;
        let settings = config.server_settings().map_err(|e| format!("{e:#}"))?;
        Ok((process.apply(settings), handler_factory(&config)))
    });
    match prefork_server::run(settings, factory, reload) {
        Ok(code) => ExitCode::from(code),
        Err(e) => fail(&e.into()),
    }
}

/// What the process environment says about how we were started (systemd, a USR2 upgrade), read
/// once here because nothing below the command line reads environment variables.
#[derive(Clone, Default)]
struct ProcessEnv {
    notify_socket: Option<std::path::PathBuf>,
    watchdog: Option<std::time::Duration>,
    inherited_fds: Vec<i32>,
    upgrade_parent: Option<i32>,
    exec: Option<prefork_server::ExecSpec>,
}

impl ProcessEnv {
    fn take() -> anyhow::Result<ProcessEnv> {
        use anyhow::Context;
        use prefork_server::{ENV_UPGRADE_FDS, ENV_UPGRADE_PARENT};
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let me = std::process::id();
        let mut out = ProcessEnv {
            notify_socket: var("NOTIFY_SOCKET").map(Into::into),
            ..ProcessEnv::default()
        };
        let watchdog_for_us = var("WATCHDOG_PID").is_none_or(|p| p.parse() == Ok(me));
        if watchdog_for_us && let Some(usec) = var("WATCHDOG_USEC") {
            let usec: u64 = usec.parse().context("WATCHDOG_USEC")?;
            out.watchdog = (usec > 0).then(|| std::time::Duration::from_micros(usec));
        }
        // A USR2 upgrade: the old master's listeners, by number (both variables, as gunicorn
        // requires since 19.7, so a stray PREFORK_FD alone is not trusted).
        if let (Some(fds), Some(parent)) = (var(ENV_UPGRADE_FDS), var(ENV_UPGRADE_PARENT)) {
            out.upgrade_parent = Some(parent.parse().context(ENV_UPGRADE_PARENT)?);
            for fd in fds.split(',') {
                out.inherited_fds
                    .push(fd.trim().parse().context(ENV_UPGRADE_FDS)?);
            }
        } else if var("LISTEN_PID").is_some_and(|p| p.parse() == Ok(me)) {
            // systemd socket activation: LISTEN_FDS descriptors from 3 on.
            let n: i32 = var("LISTEN_FDS")
                .unwrap_or_default()
                .parse()
                .context("LISTEN_FDS")?;
            out.inherited_fds = (3..3 + n.max(0)).collect();
        }
        for k in [
            "LISTEN_PID",
            "LISTEN_FDS",
            "LISTEN_FDNAMES",
            ENV_UPGRADE_FDS,
            ENV_UPGRADE_PARENT,
        ] {
            // SAFETY: called from main before the server starts, while the process has one thread.
            unsafe { std::env::remove_var(k) };
        }
        // USR2 runs the binary at the path we were started by (a symlink flipped by a deploy
        // is followed), not /proc/self/exe, which names the old file.
        let mut args = std::env::args_os();
        let argv0 = args.next().map(std::path::PathBuf::from);
        let cwd = std::env::current_dir().context("current directory")?;
        let program = match argv0 {
            Some(p) if p.components().count() > 1 => cwd.join(p),
            _ => std::env::current_exe().context("current executable")?,
        };
        out.exec = Some(prefork_server::ExecSpec {
            program,
            args: args.collect(),
            cwd,
        });
        Ok(out)
    }

    fn apply(&self, settings: prefork_server::Settings) -> prefork_server::Settings {
        prefork_server::Settings {
            notify_socket: self.notify_socket.clone(),
            watchdog: self.watchdog,
            inherited_fds: self.inherited_fds.clone(),
            upgrade_parent: self.upgrade_parent,
            exec: self.exec.clone(),
            ..settings
        }
    }
}

fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("Error: {e:#}");
    ExitCode::from(1)
}

/// Called in every worker after the fork, inside its runtime: each worker builds its own app
/// (nothing is shared but the filesystem). An `Err` is a boot failure.
fn handler_factory(config: &Config) -> HandlerFactory {
    let app_config = mrpt_app::AppConfig {
        instance_dir: config.instance_dir.clone(),
        store: config.store.clone(),
        store_vars: if config.store.is_some() {
            config::aws_vars()
        } else {
            Vec::new()
        },
        max_upload_bytes: config.app.max_upload_bytes,
        llm: config.app.llm.openai_config(),
        chat_keepalive: std::time::Duration::from_millis(config.app.chat_keepalive_ms),
        max_json_bytes: config.app.max_json_bytes,
        body_memory_bytes: config.app.body_memory_bytes,
        max_body_memory: config.app.max_body_memory,
        limits: config.app.limits(),
        max_variable_name_bytes: config.app.max_variable_name_bytes,
        sessions: config.sessions.limits(),
        max_chunk_bytes: config.app.max_chunk_bytes,
        ui_dir: config.app.ui_dir.clone(),
    };
    let switches = BootSwitches::from_env();
    Box::new(move || {
        switches.apply()?;
        let app = Arc::new(mrpt_app::App::new(app_config.clone()).map_err(|e| e.to_string())?);
        // In the worker, inside its runtime: the master never sweeps.
        app.start_session_sweeper();
        let handler = move |req: Request<RequestBody>| {
            let app = Arc::clone(&app);
            async move {
                let mut response = app.handle(req).await;
                if let Some(report) = response
                    .extensions_mut()
                    .remove::<mrpt_app::RequestReport>()
                {
                    response.extensions_mut().insert(server_report(report));
                }
                response
            }
        };
        Ok(Arc::new(handler) as Arc<dyn Handler>)
    })
}

/// The app's account of a response, in the server's terms (the app does not know the server).
fn server_report(report: mrpt_app::RequestReport) -> prefork_server::HandlerReport {
    prefork_server::HandlerReport {
        route: Some(report.route.into()),
        metrics: report.metrics,
        error: report.internal_error,
    }
}

/// Test-only switches (feature `test-hooks`): make worker boot fail or take long, so the
/// black-box tests can exercise the master's boot-failure and boot-timeout rules.
#[derive(Clone, Copy, Default)]
struct BootSwitches {
    fail: bool,
    delay_ms: u64,
}

impl BootSwitches {
    #[cfg(feature = "test-hooks")]
    fn from_env() -> BootSwitches {
        BootSwitches {
            fail: std::env::var_os("PREFORK_TEST_FAIL_BOOT").is_some(),
            delay_ms: std::env::var("PREFORK_TEST_BOOT_DELAY_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        }
    }

    #[cfg(not(feature = "test-hooks"))]
    fn from_env() -> BootSwitches {
        BootSwitches::default()
    }

    fn apply(self) -> Result<(), String> {
        if self.delay_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(self.delay_ms));
        }
        if self.fail {
            return Err("PREFORK_TEST_FAIL_BOOT is set".to_owned());
        }
        Ok(())
    }
}
