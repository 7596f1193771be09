//! `moat user ...`: vpopmail's vadduser/vpasswd/vsetuserquota/vdeluser with a SQL store.

use anyhow::Context as _;
use moat_vdomain::address::Address;

use super::{mail_path, purge};
use crate::cli::UserCmd;
use crate::context::Context;
use crate::output;
use crate::password_input::read_new_password;
use crate::size::{format_quota, parse_quota};

pub async fn run(ctx: &Context, cmd: UserCmd) -> anyhow::Result<()> {
    let store = &ctx.store;
    match cmd {
        UserCmd::Add {
            address,
            password,
            quota,
        } => {
            // Validate everything before asking for a password, so a typo costs no typing.
            let addr = Address::parse(&address)?;
            let quota = quota.as_deref().map(parse_quota).transpose()?.flatten();
            store.get_domain(&addr.domain).await?;
            let pw = read_new_password(password.password_stdin)?;
            let user = store.add_user(&addr, &pw, quota).await?;
            println!(
                "added user {} (quota {})",
                user.address,
                format_quota(user.quota_bytes)
            );
        }
        UserCmd::List { domain, json } => {
            let users = store.list_users(&domain).await?;
            if json {
                return output::json(&users);
            }
            let rows: Vec<Vec<String>> = users
                .iter()
                .map(|u| {
                    vec![
                        u.address.clone(),
                        format_quota(u.quota_bytes),
                        if u.enabled { "enabled" } else { "disabled" }.to_string(),
                        output::time(u.created),
                    ]
                })
                .collect();
            output::table(&["USER", "QUOTA", "STATE", "CREATED"], &rows);
        }
        UserCmd::Show { address, json } => {
            let user = store.get_user(&Address::parse(&address)?).await?;
            if json {
                return output::json(&user);
            }
            println!("user:    {}", user.address);
            println!("quota:   {}", format_quota(user.quota_bytes));
            println!(
                "state:   {}",
                if user.enabled {
                    "enabled"
                } else {
                    "disabled (cannot log in; mail is still delivered)"
                }
            );
            println!("created: {}", output::time(user.created));
            if let Some(root) = &ctx.mail_root {
                let path = mail_path(root, &[&user.domain, &user.local])?;
                println!("mail:    {}", path.join("Maildir").display());
            }
        }
        UserCmd::Passwd { address, password } => {
            let addr = Address::parse(&address)?;
            store.get_user(&addr).await?;
            let pw = read_new_password(password.password_stdin)?;
            store.set_password(&addr, &pw).await?;
            println!("changed the password of {addr}");
        }
        UserCmd::Quota { address, size } => {
            let addr = Address::parse(&address)?;
            let quota = parse_quota(&size)?;
            store.set_quota(&addr, quota).await?;
            println!("quota of {addr} is now {}", format_quota(quota));
        }
        UserCmd::Disable { address } => {
            let addr = Address::parse(&address)?;
            store.set_enabled(&addr, false).await?;
            println!("disabled {addr}: it cannot log in; mail is still delivered");
        }
        UserCmd::Enable { address } => {
            let addr = Address::parse(&address)?;
            store.set_enabled(&addr, true).await?;
            println!("enabled {addr}");
        }
        UserCmd::Remove {
            address,
            purge_mail,
        } => {
            let addr = Address::parse(&address)?;
            let root = if purge_mail {
                Some(ctx.require_mail_root()?.clone())
            } else {
                None
            };
            let user = store.remove_user(&addr).await?;
            println!("removed user {}", user.address);
            match root {
                Some(root) => purge(
                    &mail_path(&root, &[&user.domain, &user.local]).context("cannot purge mail")?,
                )?,
                None => println!("mail on disk was kept; --purge-mail deletes it"),
            }
        }
    }
    Ok(())
}
