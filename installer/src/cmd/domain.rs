//! `moat domain ...`: vpopmail's vadddomain/vdeldomain with a SQL store.

use anyhow::Context as _;

use super::{mail_path, purge};
use crate::cli::DomainCmd;
use crate::context::Context;
use crate::output;

pub async fn run(ctx: &Context, cmd: DomainCmd) -> anyhow::Result<()> {
    let store = &ctx.store;
    match cmd {
        DomainCmd::Add { name } => {
            let d = store.add_domain(&name).await?;
            println!("added domain {}", d.name);
        }
        DomainCmd::List { json } => {
            let domains = store.list_domains().await?;
            if json {
                return output::json(&domains);
            }
            let rows: Vec<Vec<String>> = domains
                .iter()
                .map(|d| {
                    vec![
                        d.name.clone(),
                        d.users.to_string(),
                        d.aliases.to_string(),
                        d.catchall.clone().unwrap_or_else(|| "-".into()),
                        output::time(d.created),
                    ]
                })
                .collect();
            output::table(
                &["DOMAIN", "USERS", "ALIASES", "CATCH-ALL", "CREATED"],
                &rows,
            );
        }
        DomainCmd::Show { name, json } => {
            let d = store.get_domain(&name).await?;
            if json {
                return output::json(&d);
            }
            println!("domain:        {}", d.name);
            println!("created:       {}", output::time(d.created));
            println!("users:         {}", d.users);
            println!("aliases:       {}", d.aliases);
            println!(
                "catch-all:     {}",
                d.catchall
                    .as_deref()
                    .unwrap_or("none (unknown addresses are refused)")
            );
            let aliases = if d.alias_domains.is_empty() {
                "none".to_string()
            } else {
                d.alias_domains.join(", ")
            };
            println!("alias domains: {aliases}");
        }
        DomainCmd::Remove {
            name,
            force,
            purge_mail,
        } => {
            // Check the mail root before removing anything, so a refused purge removes nothing.
            let root = if purge_mail {
                Some(ctx.require_mail_root()?.clone())
            } else {
                None
            };
            let canonical = store.get_domain(&name).await?.name;
            let users = store.remove_domain(&canonical, force).await?;
            println!(
                "removed domain {canonical} ({} user{})",
                users.len(),
                if users.len() == 1 { "" } else { "s" }
            );
            if let Some(root) = root {
                purge(&mail_path(&root, &[&canonical]).context("cannot purge mail")?)?;
            } else if !users.is_empty() {
                println!("mail on disk was kept; --purge-mail deletes it");
            }
        }
        DomainCmd::Alias { alias, target } => {
            store.add_domain_alias(&alias, &target).await?;
            println!("mail for any address at {alias} now goes to the same address at {target}");
        }
        DomainCmd::Unalias { alias } => {
            store.remove_domain_alias(&alias).await?;
            println!("removed domain alias {alias}");
        }
        DomainCmd::Dns { name } => super::dkim::print_dns(ctx, &name).await?,
    }
    Ok(())
}
