//! moat-auth: authenticate and resolve over `auth.sock`, the only process that opens the user
//! store (docs/PROTOCOLS.md, "moat-auth"). The logic lives in `moat_vdomain::daemon`.
//!
//! SECURITY: the setup is received and privileges dropped (to the `user` setting when started as
//! root, with no_new_privs) before any thread or async runtime exists; the runtime is built
//! only afterwards. Nothing comes from argv or the environment.

use std::process::ExitCode;

use moat_common::child::Setup;
use moat_common::error;
use moat_vdomain::daemon::{self, Settings};

fn main() -> ExitCode {
    moat_common::log::init("moat-auth");
    let mut setup = match Setup::receive() {
        Ok(setup) => setup,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let settings = match Settings::from_setup(&setup, rustix::process::getuid().as_raw()) {
        Ok(settings) => settings,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match setup.take_fd("auth") {
        Ok(fd) => fd,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(daemon::run(settings, listener, setup.control));
    // Do not wait for stray blocking work (a password check) longer than a moment.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}
