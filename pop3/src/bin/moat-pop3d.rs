//! moat-pop3d: placeholder until the POP3 server lands. It takes its setup like every child
//! (so the supervisor's wiring is exercised) and waits to be stopped.

fn main() -> std::process::ExitCode {
    moat_common::log::init("moat-pop3d");
    let setup = match moat_common::child::Setup::receive() {
        Ok(setup) => setup,
        Err(e) => {
            moat_common::error!("{e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    moat_common::warn!("the POP3 server is not built yet: connections are not served");
    moat_common::child::wait_for_close(&setup.control);
    std::process::ExitCode::SUCCESS
}
