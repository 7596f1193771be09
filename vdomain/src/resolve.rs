//! Address resolution: the one place that decides where mail for an address goes.
//!
//! Order for each address: domain alias (rewrite the domain) → exact user → exact alias
//! (expand every target recursively) → mailing list (`list@` or an ezmlm command address
//! `list-<command>@`) → sub-address (`base+tag`, base a user or alias) → the domain's
//! catch-all (its target resolved again) → unknown. See the crate docs for the
//! full rules (disabled users, dangling targets, loops).
//!
//! A local part over 64 octets (up to 255) resolves only as a list command address that
//! carries a member's address (`list-return-…`, `list-sc.…`, `list-uc.…`: VERP and
//! confirmations for long member addresses); any other is refused as before.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::address::{
    Address, AddressError, normalize_command_local_part, normalize_domain, normalize_local_part,
};
use crate::connect::Store;
use crate::error::StoreError;
use crate::lists::ListCommand;
use crate::lists::claims::list_claiming;

/// Knobs for [`Store::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveOptions {
    /// Separates a local part from its detail (`user+tag`); `None` turns sub-addressing off.
    pub subaddress_delimiter: Option<char>,
    /// How many alias/catch-all hops an expansion may take before it is called a loop.
    pub max_depth: usize,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        ResolveOptions {
            subaddress_delimiter: Some('+'),
            max_depth: 10,
        }
    }
}

/// What to do with mail for an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Resolution {
    /// No such address in a domain we host: reject the recipient.
    Unknown,
    /// The domain is not one we host (nor an alias of one): mail for it is relayed (after
    /// authentication) or refused (relaying denied), never delivered here.
    NotLocal,
    /// Deliver a copy to each target (never empty, no duplicates).
    Deliver(Vec<Target>),
}

/// One delivery destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Target {
    /// A local mailbox.
    Mailbox {
        /// The user, `local@domain` (canonical: domain aliases already applied).
        user: String,
        /// Maildir location relative to the mail root: `domain/local`.
        maildir: String,
        /// `None` = unlimited.
        quota_bytes: Option<i64>,
        /// The sub-address tag (`tag` in `user+tag`), if the mail was addressed with one.
        detail: Option<String>,
    },
    /// Relay to a remote address.
    Forward(String),
    /// Mail for a mailing list, for the list manager (docs/LISTS.md).
    List {
        /// The list's posting address, `list@domain` (canonical domain).
        list_address: String,
        /// The command part of the address after `list-` (lower-case; parse it with
        /// [`crate::ListCommand::parse`]); `None` for a post to `list@domain` itself.
        extension: Option<String>,
    },
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Store {
    /// Decides where mail for `address` goes (see the module docs for the order).
    ///
    /// `Ok(Resolution::NotLocal)` for an address in a domain we do not host,
    /// `Ok(Resolution::Unknown)` for an address of ours that matches nothing; [`StoreError::InvalidAddress`] if `address` is not a valid
    /// address at all; [`StoreError::AliasLoop`] if alias expansion loops or exceeds
    /// `opts.max_depth`.
    pub async fn resolve(
        &self,
        address: &str,
        opts: &ResolveOptions,
    ) -> Result<Resolution, StoreError> {
        let parsed = Address::parse(address);
        let mut conn = self.pool.acquire().await?;
        let mut r = Resolver {
            conn: &mut conn,
            opts,
            stack: Vec::new(),
            done: HashMap::new(),
            out: Vec::new(),
            seen: HashSet::new(),
            not_local: false,
        };
        let addr = match parsed {
            Ok(addr) => addr,
            Err(e) => {
                // Over 64 octets: only a list's VERP or confirmation address may be that long.
                if matches!(e, AddressError::LocalTooLong(_))
                    && let Some(found) = r.long_command_address(address).await?
                {
                    return Ok(found);
                }
                // A local part we would never create (UTF-8 as RFC 6531 allows, a quoted
                // string) in a domain we do not host is the other side's business: relayed.
                let domain = address
                    .trim()
                    .rsplit_once('@')
                    .and_then(|(_, d)| normalize_domain(d).ok());
                return match domain {
                    Some(d) if r.lookup_domain(&d).await?.is_none() => Ok(Resolution::NotLocal),
                    _ => Err(e.into()),
                };
            }
        };
        let found = r.expand(addr, 0, None).await?;
        if r.not_local {
            return Ok(Resolution::NotLocal);
        }
        let out = std::mem::take(&mut r.out);
        Ok(if found && !out.is_empty() {
            Resolution::Deliver(out)
        } else {
            Resolution::Unknown
        })
    }
}

/// State of one resolution: a depth-first walk over the alias graph.
struct Resolver<'c> {
    conn: &'c mut AnyConnection,
    opts: &'c ResolveOptions,
    /// Addresses being expanded right now, outermost first: meeting one again is a loop.
    stack: Vec<String>,
    /// Addresses already fully expanded, and whether they delivered anywhere; a diamond
    /// (two aliases sharing a target) is expanded once, which also bounds the work.
    done: HashMap<String, bool>,
    out: Vec<Target>,
    /// Dedupe keys of `out`: the user for mailboxes, the address for forwards, list and
    /// extension for lists.
    seen: HashSet<String>,
    /// The top-level address is in a domain we do not host.
    not_local: bool,
}

impl Resolver<'_> {
    /// Resolves a local-or-remote address reached at `depth`. Returns whether it delivers
    /// anywhere. `detail` is a sub-address tag inherited from an outer `alias+tag`.
    fn expand(
        &mut self,
        addr: Address,
        depth: usize,
        detail: Option<String>,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let Some((domain_id, domain)) = self.lookup_domain(&addr.domain).await? else {
                if depth == 0 {
                    // Top level: not a domain we host, so not ours to accept.
                    self.not_local = true;
                    return Ok(false);
                }
                // A target in a domain we do not host: relay it.
                let fwd = addr.to_string();
                if self.seen.insert(format!("fwd:{fwd}")) {
                    self.out.push(Target::Forward(fwd));
                }
                return Ok(true);
            };
            let canonical = Address {
                local: addr.local,
                domain,
            };
            let key = canonical.to_string();
            if self.stack.contains(&key) {
                let mut chain = self.stack.clone();
                chain.push(key);
                return Err(StoreError::AliasLoop(format!(
                    "{} (fix the aliases or catch-all involved)",
                    chain.join(" -> ")
                )));
            }
            if depth > self.opts.max_depth {
                let mut chain = self.stack.clone();
                chain.push(key);
                return Err(StoreError::AliasLoop(format!(
                    "{} is more than {} levels deep",
                    chain.join(" -> "),
                    self.opts.max_depth
                )));
            }
            if let Some(&found) = self.done.get(&key) {
                return Ok(found);
            }
            self.stack.push(key.clone());
            let result = self
                .expand_local(domain_id, &canonical, depth, detail)
                .await;
            self.stack.pop();
            let found = result?;
            self.done.insert(key, found);
            Ok(found)
        })
    }

    /// `address` (its local part 65 to 255 octets) as a list command address that carries a
    /// member's address (`return-…`, `sc.…`, `uc.…`), or `None`: every other address keeps
    /// RFC 5321's 64 octets (no user, alias or sub-address is looked up for it).
    async fn long_command_address(
        &mut self,
        address: &str,
    ) -> Result<Option<Resolution>, StoreError> {
        let Some((local, domain)) = address.trim().rsplit_once('@') else {
            return Ok(None);
        };
        let (Ok(local), Ok(domain)) = (
            normalize_command_local_part(local),
            normalize_domain(domain),
        ) else {
            return Ok(None);
        };
        let Some((domain_id, domain)) = self.lookup_domain(&domain).await? else {
            return Ok(None);
        };
        let Some((list, cmd)) = list_claiming(self.conn, domain_id, &local).await? else {
            return Ok(None);
        };
        if !matches!(
            cmd,
            ListCommand::Return(_)
                | ListCommand::SubscribeConfirm { .. }
                | ListCommand::UnsubscribeConfirm { .. }
        ) {
            return Ok(None);
        }
        let extension = local.get(list.len() + 1..).unwrap_or("").to_owned();
        Ok(Some(Resolution::Deliver(vec![Target::List {
            list_address: format!("{list}@{domain}"),
            extension: Some(extension),
        }])))
    }

    /// The steps after the domain is known to be ours.
    async fn expand_local(
        &mut self,
        domain_id: i64,
        addr: &Address,
        depth: usize,
        detail: Option<String>,
    ) -> Result<bool, StoreError> {
        // 1. Exact user (enabled or not: disabled users keep receiving).
        if let Some(quota) = self.user(domain_id, &addr.local).await? {
            self.push_mailbox(addr, quota, detail);
            return Ok(true);
        }
        // 2. Exact alias.
        let targets = self.alias_targets(domain_id, &addr.local).await?;
        if !targets.is_empty() {
            return self.expand_targets(targets, depth, detail).await;
        }
        // 3. A list's own address or one of its command addresses.
        if let Some((list, cmd)) = list_claiming(self.conn, domain_id, &addr.local).await? {
            let list_address = format!("{list}@{}", addr.domain);
            // The address's own spelling of the command, not a re-serialisation: the list
            // manager parses it again (it trusts nothing that crossed a socket).
            let extension = (cmd != ListCommand::Post)
                .then(|| addr.local.get(list.len() + 1..).unwrap_or("").to_owned());
            let key = format!("list:{list_address}:{}", extension.as_deref().unwrap_or(""));
            if self.seen.insert(key) {
                self.out.push(Target::List {
                    list_address,
                    extension,
                });
            }
            return Ok(true);
        }
        // 4. Sub-address: split at the first delimiter; the base must be a user or alias.
        if let Some(delim) = self.opts.subaddress_delimiter
            && let Some((base, tag)) = addr.local.split_once(delim)
            && let Ok(base) = normalize_local_part(base)
        {
            let tag = (!tag.is_empty()).then(|| tag.to_owned());
            let base_addr = Address {
                local: base,
                domain: addr.domain.clone(),
            };
            if let Some(quota) = self.user(domain_id, &base_addr.local).await? {
                self.push_mailbox(&base_addr, quota, tag);
                return Ok(true);
            }
            let targets = self.alias_targets(domain_id, &base_addr.local).await?;
            if !targets.is_empty() {
                return self.expand_targets(targets, depth, tag).await;
            }
        }
        // 5. Catch-all.
        if let Some(target) = self.catchall(domain_id).await? {
            return self.expand_targets(vec![target], depth, None).await;
        }
        Ok(false)
    }

    /// Expands alias (or catch-all) targets one level deeper. True if any delivers.
    async fn expand_targets(
        &mut self,
        targets: Vec<String>,
        depth: usize,
        detail: Option<String>,
    ) -> Result<bool, StoreError> {
        let mut any = false;
        for t in targets {
            // Stored targets were validated on the way in; a bad one means someone edited
            // the tables by hand.
            let addr = Address::parse(&t).map_err(|e| {
                StoreError::Database(format!("stored alias target {t:?} is invalid: {e}"))
            })?;
            if self.expand(addr, depth + 1, detail.clone()).await? {
                any = true;
            }
        }
        Ok(any)
    }

    fn push_mailbox(&mut self, addr: &Address, quota_bytes: Option<i64>, detail: Option<String>) {
        let user = addr.to_string();
        if self.seen.insert(format!("box:{user}")) {
            self.out.push(Target::Mailbox {
                maildir: format!("{}/{}", addr.domain, addr.local),
                user,
                quota_bytes,
                detail,
            });
        }
    }

    /// The hosted domain `name` is, directly or as a domain alias: (id, canonical name).
    async fn lookup_domain(&mut self, name: &str) -> Result<Option<(i64, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, 0 FROM domains WHERE name = $1
             UNION ALL
             SELECT d.id, d.name, 1 FROM domain_aliases a JOIN domains d ON d.id = a.domain_id
             WHERE a.name = $1
             ORDER BY 3 LIMIT 1",
        )
        .bind(name)
        .fetch_optional(&mut *self.conn)
        .await?;
        match row {
            Some(r) => Ok(Some((r.try_get(0)?, r.try_get(1)?))),
            None => Ok(None),
        }
    }

    /// `Some(quota)` if `local` is a user of the domain.
    async fn user(
        &mut self,
        domain_id: i64,
        local: &str,
    ) -> Result<Option<Option<i64>>, StoreError> {
        let row =
            sqlx::query("SELECT quota_bytes FROM users WHERE domain_id = $1 AND local_part = $2")
                .bind(domain_id)
                .bind(local)
                .fetch_optional(&mut *self.conn)
                .await?;
        match row {
            Some(r) => Ok(Some(r.try_get(0)?)),
            None => Ok(None),
        }
    }

    async fn alias_targets(
        &mut self,
        domain_id: i64,
        local: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT target FROM aliases WHERE domain_id = $1 AND local_part = $2 ORDER BY id",
        )
        .bind(domain_id)
        .bind(local)
        .fetch_all(&mut *self.conn)
        .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(StoreError::from))
            .collect()
    }

    async fn catchall(&mut self, domain_id: i64) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT target FROM catchalls WHERE domain_id = $1")
            .bind(domain_id)
            .fetch_optional(&mut *self.conn)
            .await?;
        match row {
            Some(r) => Ok(Some(r.try_get(0)?)),
            None => Ok(None),
        }
    }
}
