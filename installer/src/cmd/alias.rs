//! `moat alias ...` and `moat catchall ...`: vpopmail's valias and the domain catch-all.

use moat_vdomain::address::Address;

use crate::cli::{AliasCmd, CatchallCmd};
use crate::context::Context;
use crate::output;

pub async fn run(ctx: &Context, cmd: AliasCmd) -> anyhow::Result<()> {
    let store = &ctx.store;
    match cmd {
        AliasCmd::Add { source, targets } => {
            let source = Address::parse(&source)?;
            store.add_alias(&source, &targets).await?;
            println!("{source} now goes to {}", targets.join(", "));
        }
        AliasCmd::List { domain, json } => {
            let aliases = store.list_aliases(domain.as_deref()).await?;
            if json {
                return output::json(&aliases);
            }
            let rows: Vec<Vec<String>> = aliases
                .iter()
                .map(|a| vec![a.source.clone(), a.targets.join(", ")])
                .collect();
            output::table(&["ALIAS", "TARGETS"], &rows);
        }
        AliasCmd::Remove { source, target } => {
            let source = Address::parse(&source)?;
            store.remove_alias(&source, target.as_deref()).await?;
            match target {
                Some(t) => println!("{source} no longer goes to {t}"),
                None => println!("removed alias {source}"),
            }
        }
    }
    Ok(())
}

pub async fn run_catchall(ctx: &Context, cmd: CatchallCmd) -> anyhow::Result<()> {
    match cmd {
        CatchallCmd::Set { domain, target } => {
            ctx.store.set_catchall(&domain, &target).await?;
            println!("mail for unknown addresses at {domain} now goes to {target}");
        }
        CatchallCmd::Clear { domain } => {
            ctx.store.clear_catchall(&domain).await?;
            println!("mail for unknown addresses at {domain} is refused again");
        }
    }
    Ok(())
}
