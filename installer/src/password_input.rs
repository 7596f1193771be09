//! Reading a new password: asked twice on the terminal without echo, or one line of stdin.
//! Never from argv, where `ps` and shell history would show it.

use std::io::{BufRead, Read};

use anyhow::{Context, bail};

/// The longest password accepted; argon2 does not need more and the limit bounds the read.
const MAX_PASSWORD: usize = 1024;

pub fn read_new_password(from_stdin: bool) -> anyhow::Result<String> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .take(MAX_PASSWORD as u64 + 2)
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        line.strip_suffix('\r').unwrap_or(line).to_string()
    } else {
        let first = rpassword::prompt_password("New password: ").context(
            "cannot ask for a password (no terminal?): pipe it in with --password-stdin",
        )?;
        check(&first)?;
        let second = rpassword::prompt_password("Repeat password: ").context(
            "cannot ask for a password (no terminal?): pipe it in with --password-stdin",
        )?;
        if first != second {
            bail!("the two passwords differ; nothing was changed");
        }
        first
    };
    check(&password)?;
    Ok(password)
}

fn check(password: &str) -> anyhow::Result<()> {
    if password.is_empty() {
        bail!("the password is empty; nothing was changed");
    }
    if password.len() > MAX_PASSWORD {
        bail!("the password is longer than {MAX_PASSWORD} bytes; nothing was changed");
    }
    if password.chars().any(|c| c.is_control()) {
        bail!("the password contains control characters; nothing was changed");
    }
    Ok(())
}
