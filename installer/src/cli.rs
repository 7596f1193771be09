//! The command line: every subcommand and flag of `moat`, with the help text admins read.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "moat",
    version,
    about = "Moat mail server administration",
    long_about = "Moat mail server administration: virtual domains, users, aliases, catch-alls and mailing lists.\n\n\
The user store is named by the configuration file (--config, $MOAT_CONFIG, ./moat-data/moat.toml \
or /etc/moat/moat.toml, first found wins) or directly with --db.",
    after_help = "Examples:\n  \
moat --db sqlite:users.db domain add example.org\n  \
moat user add alice@example.org --quota 2G\n  \
echo \"$PW\" | moat user add bob@example.org --password-stdin\n  \
moat alias add team@example.org alice@example.org bob@example.org\n  \
moat catchall set example.org alice@example.org\n  \
moat list create dev@example.org --archive\n  \
moat dkim generate example.org\n  \
moat domain dns example.org\n  \
moat user list example.org --json"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug)]
pub struct Global {
    /// Configuration file to use instead of the usual lookup.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// User store URL, overriding the configuration: sqlite:PATH or postgres://USER@HOST/DB.
    #[arg(long, global = true, value_name = "URL")]
    pub db: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Virtual domains: add, list, show, remove, and domain aliases.
    #[command(subcommand)]
    Domain(DomainCmd),
    /// Mailbox users: add, list, show, passwd, quota, disable, enable, remove.
    #[command(subcommand)]
    User(UserCmd),
    /// Aliases: one address delivered to one or more local or remote addresses.
    #[command(subcommand)]
    Alias(AliasCmd),
    /// The catch-all of a domain: where mail to unknown addresses goes.
    #[command(subcommand)]
    Catchall(CatchallCmd),
    /// Mailing lists (ezmlm style): create, show, set, delete, members, add, remove.
    List(ListArgs),
    /// The mail queue: list, show, flush (retry now), delete.
    #[command(subcommand)]
    Queue(QueueCmd),
    /// DKIM signing keys of a domain: generate.
    #[command(subcommand)]
    Dkim(DkimCmd),
    /// Quickstart: run the whole stack from ./moat-data on high ports (made on first run).
    #[command(
        after_help = "Ports: 2525 (MX), 2587 (submission, STARTTLS), 2465 (submission, TLS).\n\
On first run it makes ./moat-data with its configuration, a SQLite store, a self-signed \
certificate, and the demo domain example.test whose postmaster password is printed once.\n\n\
Examples:\n  moat up\n  moat up --dir /srv/mail --listen-ip 0.0.0.0 --no-demo"
    )]
    Up {
        /// The folder holding everything.
        #[arg(long, default_value = "moat-data", value_name = "DIR")]
        dir: PathBuf,
        /// Do not add the demo domain on first run.
        #[arg(long)]
        no_demo: bool,
        /// The address the services listen on when the folder is first made.
        #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
        listen_ip: String,
    },
    /// Run the stack from the configuration file: the supervisor (root binds ports and spawns).
    #[command(
        after_help = "Run as root, each program runs under its own system user \
(users.* in the configuration). SIGTERM drains, SIGHUP reloads the certificates and the DKIM \
keys."
    )]
    Serve,
    /// What the running supervisor runs: each program's pid, user and confinement.
    #[command(
        after_help = "For each process: its user; from /proc/PID/status its uid, effective \
capabilities (CapEff), NoNewPrivs and seccomp mode; and the Landlock and seccomp summaries it \
reported once confined. Exits 1 when no supervisor is running for the configuration.\n\n\
Examples:\n  moat status\n  moat --config /etc/moat/moat.toml status --json"
    )]
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum DomainCmd {
    /// Add a virtual domain (international names are stored as IDNA A-labels).
    #[command(after_help = "Example:\n  moat domain add example.org")]
    Add { name: String },
    /// List the domains with their user and alias counts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one domain: counts, catch-all, domain aliases.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a domain with its aliases and catch-all. Refused while it has users unless --force.
    #[command(
        after_help = "Mail on disk is kept unless --purge-mail is given.\n\nExample:\n  \
moat domain remove old.example --force --purge-mail"
    )]
    Remove {
        name: String,
        /// Remove the domain even though it has users (their accounts go too).
        #[arg(long)]
        force: bool,
        /// Also delete the domain's mail folder from disk.
        #[arg(long)]
        purge_mail: bool,
    },
    /// Make ALIAS another name of TARGET: mail to user@ALIAS goes to user@TARGET.
    #[command(after_help = "Example:\n  moat domain alias example.net example.org")]
    Alias { alias: String, target: String },
    /// Remove a domain alias.
    Unalias { alias: String },
    /// Print the DNS records to publish for a domain: MX, SPF, each DKIM key, DMARC.
    #[command(
        after_help = "Zone-file lines; reading the DKIM keys needs the rights of the admin who \
made them (root on an installed server).\n\nExample:\n  moat domain dns example.org"
    )]
    Dns { name: String },
}

#[derive(Subcommand, Debug)]
pub enum DkimCmd {
    /// Make an RSA-2048 and an Ed25519 key for DOMAIN and print their DNS records.
    #[command(
        after_help = "The keys go to <dkim folder>/<domain>/<selector>.rsa.pem and \
<selector>.ed25519.pem (mode 0600); the folder is [paths] dkim, by default dkim/ beside \
moat.toml. Selectors are <PREFIX>-rsa-<YYYYMM> and <PREFIX>-ed-<YYYYMM>.\n\
moat-remote signs with every key of the From: domain once the supervisor reloads (SIGHUP) or \
restarts; publish the printed records first.\n\n\
Key rotation: run again with --force and a new --selector (new keys beside the old ones, both \
sign), publish the new records, then delete the old files and SIGHUP the supervisor. --force \
with existing selectors replaces those keys.\n\n\
Examples:\n  moat dkim generate example.org\n  moat dkim generate example.org --selector mail"
    )]
    Generate {
        domain: String,
        /// Selector prefix (letters, digits, '-').
        #[arg(long, value_name = "PREFIX", default_value = "moat")]
        selector: String,
        /// Add keys although the domain has some (rotation); replaces keys of the same selector.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Add a user; the password is asked twice on the terminal, or read from --password-stdin.
    #[command(after_help = "Example:\n  moat user add alice@example.org --quota 2G")]
    Add {
        address: String,
        #[command(flatten)]
        password: PasswordSource,
        /// Mailbox quota: bytes, or with a K/M/G/T suffix (powers of 1024); none = unlimited.
        #[arg(long, value_name = "SIZE")]
        quota: Option<String>,
    },
    /// List the users of a domain.
    List {
        domain: String,
        #[arg(long)]
        json: bool,
    },
    /// Show one user.
    Show {
        address: String,
        #[arg(long)]
        json: bool,
    },
    /// Set a user's password.
    Passwd {
        address: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Set a user's quota: bytes, or with a K/M/G/T suffix; none = unlimited.
    #[command(after_help = "Examples:\n  moat user quota alice@example.org 500M\n  \
moat user quota alice@example.org none")]
    Quota { address: String, size: String },
    /// Stop a user from logging in (mail is still accepted and delivered).
    Disable { address: String },
    /// Let a disabled user log in again.
    Enable { address: String },
    /// Remove a user. Mail on disk is kept unless --purge-mail is given.
    Remove {
        address: String,
        /// Also delete the user's mail folder from disk.
        #[arg(long)]
        purge_mail: bool,
    },
}

#[derive(Args, Debug)]
pub struct PasswordSource {
    /// Read the password from the first line of standard input instead of asking.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Subcommand, Debug)]
pub enum AliasCmd {
    /// Add targets to an alias (created if new). Targets may be local or remote addresses.
    #[command(
        after_help = "Example:\n  moat alias add team@example.org alice@example.org bob@other.net"
    )]
    Add {
        source: String,
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// List aliases, of one domain or all.
    List {
        domain: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove one target of an alias, or the whole alias when no target is named.
    Remove {
        source: String,
        target: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum CatchallCmd {
    /// Deliver mail for unknown addresses of DOMAIN to TARGET.
    #[command(after_help = "Example:\n  moat catchall set example.org postmaster@example.org")]
    Set { domain: String, target: String },
    /// Refuse mail for unknown addresses of DOMAIN again.
    Clear { domain: String },
}

/// `moat list` alone lists every mailing list; the subcommands manage one.
#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "A list LIST@DOMAIN owns its address and the ezmlm command addresses \
LIST-subscribe, LIST-unsubscribe, LIST-help, LIST-owner, LIST-return-..., LIST-get.N and the \
rest (docs/LISTS.md); no user or alias may take one of them.\n\n\
Examples:\n  moat list\n  moat list create dev@example.org --archive --digest\n  \
moat list set dev@example.org --subject-prefix '[dev]' --reply-to list\n  \
moat list add dev@example.org bob@other.net\n  \
moat list add dev@example.org alice@example.org --moderator\n  \
moat list members dev@example.org --kind moderator"
)]
pub struct ListArgs {
    #[command(subcommand)]
    pub command: Option<ListCmd>,
    /// Only the lists of this domain.
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum ListCmd {
    /// Create a mailing list (all switches off unless given).
    #[command(after_help = "Example:\n  moat list create dev@example.org --moderated --archive")]
    Create {
        list: String,
        /// Posts wait for a moderator's approval.
        #[arg(long)]
        moderated: bool,
        /// Only addresses on the list may post.
        #[arg(long)]
        members_only: bool,
        /// Keep posts for LIST-get.N and LIST-index.
        #[arg(long)]
        archive: bool,
        /// Offer digest subscriptions and send digests.
        #[arg(long)]
        digest: bool,
    },
    /// Show a list's settings and roster sizes.
    Show {
        list: String,
        #[arg(long)]
        json: bool,
    },
    /// Change a list's settings; only the options given change.
    #[command(
        after_help = "Examples:\n  moat list set dev@example.org --subject-prefix '[dev]' --max-size 1M\n  \
moat list set dev@example.org --reply-to poster --footer-file footer.txt\n  \
moat list set dev@example.org --moderated false --max-size none --owner none"
    )]
    Set {
        list: String,
        /// Text put in front of each post's Subject ("" for none).
        #[arg(long, value_name = "TEXT")]
        subject_prefix: Option<String>,
        /// Largest post accepted: bytes or K/M/G suffix; none = only the server's limit.
        #[arg(long, value_name = "SIZE")]
        max_size: Option<String>,
        /// Reply-To of posts: list, poster, or none (leave the poster's headers alone).
        #[arg(long, value_name = "POLICY")]
        reply_to: Option<String>,
        /// Text appended to every post, read from this file.
        #[arg(long, value_name = "FILE", conflicts_with = "no_footer")]
        footer_file: Option<PathBuf>,
        /// Remove the footer.
        #[arg(long)]
        no_footer: bool,
        /// Where LIST-owner mail goes; none = to the moderators.
        #[arg(long, value_name = "ADDRESS")]
        owner: Option<String>,
        #[arg(long, value_name = "true|false")]
        moderated: Option<bool>,
        #[arg(long, value_name = "true|false")]
        members_only: Option<bool>,
        #[arg(long, value_name = "true|false")]
        archive: Option<bool>,
        #[arg(long, value_name = "true|false")]
        digest: Option<bool>,
    },
    /// Delete a list. Refused while addresses are on it unless --force.
    #[command(
        after_help = "The list manager's archive is not touched.\n\nExample:\n  \
moat list delete old@example.org --force"
    )]
    Delete {
        list: String,
        /// Delete the list even though addresses are on it (they go too).
        #[arg(long)]
        force: bool,
    },
    /// The addresses on a list: members, digest members and moderators, or one kind.
    Members {
        list: String,
        /// Only this roster: member, digest or moderator.
        #[arg(long, value_name = "KIND")]
        kind: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Put an address on a list (as a member unless --moderator or --digest).
    Add {
        list: String,
        address: String,
        #[command(flatten)]
        kind: KindFlag,
    },
    /// Take an address off a list (the member roster unless --moderator or --digest).
    Remove {
        list: String,
        address: String,
        #[command(flatten)]
        kind: KindFlag,
    },
}

/// Which roster `moat list add/remove` works on.
#[derive(Args, Debug)]
pub struct KindFlag {
    /// The moderators' roster.
    #[arg(long, conflicts_with = "digest")]
    pub moderator: bool,
    /// The digest roster.
    #[arg(long)]
    pub digest: bool,
}

#[derive(Subcommand, Debug)]
pub enum QueueCmd {
    /// List the messages waiting in the queue (like postqueue -p / qmail-qread).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one message's envelope, recipients and delivery state.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Retry every waiting message now (like postqueue -f).
    Flush,
    /// Delete a message from the queue without delivering or bouncing it.
    #[command(after_help = "Example:\n  moat queue delete 1TW2KQ8F0A3C0001")]
    Delete { id: String },
}
