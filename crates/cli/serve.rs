//! `prefork [flags]`: load the configuration, then hand the master its settings, the per-worker
//! handler factory and the reloader it calls on SIGHUP.

use std::process::ExitCode;
use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;
use prefork_server::{Handler, HandlerFactory};

use crate::args::ServeArgs;
use crate::config::{self, Config};

pub fn run(args: ServeArgs) -> ExitCode {
    let config = match config::load(&args).and_then(|c| c.server_settings().map(|s| (c, s))) {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    let (config, settings) = config;
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
        eprintln!("Configuration OK");
        return ExitCode::SUCCESS;
    }
    let factory = handler_factory(&config);
    let reload: prefork_server::Reloader = Box::new(move || {
        let config = config::load(&args).map_err(|e| format!("{e:#}"))?;
        let settings = config.server_settings().map_err(|e| format!("{e:#}"))?;
        Ok((settings, handler_factory(&config)))
    });
    match prefork_server::run(settings, factory, reload) {
        Ok(code) => ExitCode::from(code),
        Err(e) => fail(&e.into()),
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
        max_upload_bytes: config.app.max_upload_bytes,
    };
    let switches = BootSwitches::from_env();
    Box::new(move || {
        switches.apply()?;
        let app = Arc::new(mrpt_app::App::new(app_config.clone()).map_err(|e| e.to_string())?);
        let handler = move |req: Request<Incoming>| {
            let app = Arc::clone(&app);
            async move { app.handle(req).await }
        };
        Ok(Arc::new(handler) as Arc<dyn Handler>)
    })
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
