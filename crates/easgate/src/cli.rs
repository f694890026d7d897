//! The command line of the interface contract (DESIGN §4), as clap types.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

/// Device trust for mobile email: a CA, SCEP enrollment and an Exchange ActiveSync gateway.
///
/// Every command works on the store directly (the server need not run); a running server picks
/// the change up within two seconds. Start with:
///
///   easgate serve                                  (first start creates CA `default`)
///   easgate template create phones --ca default --subject 'CN={DeviceUid}' \
///       --san 'email:{EmailAddress}' --san 'upn:{UserPrincipalName}'
///   easgate user add alice@corp.example --email alice@corp.example
///   easgate device enroll --user alice@corp.example --platform ios
#[derive(Debug, Parser)]
#[command(name = "easgate", version, verbatim_doc_comment, max_term_width = 100)]
pub struct Cli {
    /// Directory holding the master key, the SQLite database and generated files
    /// [default: ./easgate-data].
    #[arg(long, global = true, env = "EASGATE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Database URL: `sqlite://PATH` (default: easgate.db in the data dir) or `postgres://…`.
    #[arg(
        long,
        global = true,
        env = "EASGATE_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Base URL written into certificates (CRL, OCSP, CA issuers) and profiles.
    /// Default: the value `serve` recorded, else http://<hostname>:8080.
    #[arg(long, global = true, env = "EASGATE_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Print one JSON document instead of text (list and show commands, `device enroll`).
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run easgate: EAS gateway, public PKI (CA certificates, CRLs, OCSP) and admin listeners.
    /// On an empty data directory it first creates the master key, database, CA `default`,
    /// the gateway's TLS certificate and an admin token.
    Serve(Box<ServeArgs>),
    /// Create a data directory without serving: master key, database and — unless --no-ca —
    /// what `serve` makes on its first start (CA `default`, gateway TLS certificate, admin
    /// token). Every command but `serve` and `init` needs an existing data directory.
    Init(InitArgs),
    /// Certificate authorities: one per protected mail service.
    #[command(subcommand)]
    Ca(CaCommand),
    /// External CAs whose device certificates the gateway also accepts.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Users (mailbox owners).
    #[command(subcommand)]
    User(UserCommand),
    /// Groups of users, for access rules and profiles.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Certificate templates: subject, SANs, key and validity with lookup values.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Devices: enroll (record + one-time SCEP challenge), list, retire, wipe.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Device certificates: issue, list, show, revoke, doctor.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Revocation lists: publish a full or delta CRL now.
    #[command(subcommand)]
    Crl(CrlCommand),
    /// Device profiles: the mail account and its certificate for iOS (.mobileconfig) and
    /// Android (managed configuration), rendered per device.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Access rules of the gateway: ordered rules, the default action, what-if.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// EAS device partnerships the gateway has seen (like Get-MobileDevice), and per-device
    /// allow/block/quarantine decisions that come before every rule.
    #[command(subcommand)]
    Eas(EasCommand),
    /// EAS device policies (passcode, encryption) the gateway hands out with
    /// `serve --provision gateway`, assigned to groups, one the default.
    #[command(subcommand, name = "eas-policy")]
    EasPolicy(EasPolicyCommand),
    /// Show admin actions and access decisions recorded in the audit trail.
    Audit(AuditArgs),
    /// Admin API tokens: create (shown once), list, revoke. Roles: admin (everything),
    /// helpdesk (devices, partnerships, overrides, re-enroll, revoke; reads the rest),
    /// auditor (reads everything, audit included), enroller (enrolls devices and fetches SCEP
    /// challenges only: what an MDM gets).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Check the whole setup from the outside, one line per check: the public URL resolves,
    /// each CA's certificate, CRLs and OCSP answer correctly through it (the server must run),
    /// the gateway's TLS certificate, the upstream, trusted CAs' CRLs, file modes, templates
    /// and profiles, access rules, the clock. Exit 1 if any check fails.
    Doctor(DoctorArgs),
    /// Copy this SQLite install (the database --database-url / --data-dir name) into an empty
    /// PostgreSQL database or schema in one transaction, verify every table (row count and
    /// SHA-256 of its rows on both sides) and commit. Stop `serve` first; then start easgate
    /// with --database-url set to the target and the same data directory (master key).
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The empty target: postgres://USER[:PASSWORD]@HOST[:PORT]/DB, optionally ?schema=NAME
    /// (also postgresql://).
    #[arg(long, value_name = "URL")]
    pub to: String,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Check this upstream EAS URL instead of the one `serve` recorded.
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once and stored hashed.
    Create {
        /// A name for the token (who or what uses it, e.g. `intune` or `helpdesk-bob`); the
        /// audit trail shows it as `token:NAME`.
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Lifetime, e.g. 90d or 12h [default: no expiry].
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
    },
    /// List tokens (never the tokens themselves): name, role, created, expiry, revocation.
    List,
    /// Revoke a token; the next call with it gets 401.
    Revoke { name: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Helpdesk,
    Auditor,
    Enroller,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Only the master key and the database: create your own CAs with `easgate ca create`
    /// (`serve` makes CA `default` only when there is no CA at all).
    #[arg(long)]
    pub no_ca: bool,
}

/// `serve` settings; each also comes from its environment variable or the `--config` file
/// (same names with `_` for `-`); flags win over the file.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML file with any of these settings (unknown keys are an error).
    #[arg(long, env = "EASGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Public PKI listener (plain HTTP) [default: 0.0.0.0:8080].
    #[arg(long, env = "EASGATE_PUBLIC_LISTEN", value_name = "ADDR")]
    pub public_listen: Option<String>,
    /// Admin listener: REST API, /metrics, /healthz [default: 127.0.0.1:9090]. An address off
    /// loopback needs --admin-tls.
    #[arg(long, env = "EASGATE_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// Serve the admin listener over TLS, with the gateway's certificate unless
    /// --admin-tls-cert/--admin-tls-key name another.
    #[arg(long, env = "EASGATE_ADMIN_TLS")]
    pub admin_tls: bool,
    /// Certificate chain (PEM) of the admin listener's TLS (implies --admin-tls).
    #[arg(
        long,
        env = "EASGATE_ADMIN_TLS_CERT",
        value_name = "FILE",
        requires = "admin_tls_key"
    )]
    pub admin_tls_cert: Option<String>,
    /// The key of --admin-tls-cert (PEM).
    #[arg(
        long,
        env = "EASGATE_ADMIN_TLS_KEY",
        value_name = "FILE",
        requires = "admin_tls_cert"
    )]
    pub admin_tls_key: Option<String>,
    /// EAS gateway listener (TLS; client certificate requested) [default: 0.0.0.0:8443].
    #[arg(long, env = "EASGATE_GATEWAY_LISTEN", value_name = "ADDR")]
    pub gateway_listen: Option<String>,
    /// Threads serving gateway connections, each with its own event loop and upstream
    /// connections [default: the number of CPUs].
    #[arg(long, env = "EASGATE_GATEWAY_THREADS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub gateway_threads: Option<u16>,
    /// The mail server's ActiveSync endpoint that allowed requests go to, e.g.
    /// https://mail.corp.example/Microsoft-Server-ActiveSync (the query string is passed on).
    /// Without it devices are still checked and recorded; allowed requests get 502.
    #[arg(long, env = "EASGATE_UPSTREAM", value_name = "URL")]
    pub upstream: Option<String>,
    /// Extra CA certificates (PEM) the upstream's TLS certificate may chain to (besides the
    /// system's).
    #[arg(long, env = "EASGATE_UPSTREAM_CA", value_name = "FILE")]
    pub upstream_ca: Option<String>,
    /// How the upstream learns the user: `passthrough` forwards the device's Authorization;
    /// `trusted-header` drops it and sets --upstream-user-header to the certificate's UPN
    /// [default: passthrough].
    #[arg(long, env = "EASGATE_UPSTREAM_AUTH", value_name = "MODE")]
    pub upstream_auth: Option<String>,
    /// Header carrying the user in trusted-header mode (any client copy is removed)
    /// [default: X-Remote-User].
    #[arg(long, env = "EASGATE_UPSTREAM_USER_HEADER", value_name = "NAME")]
    pub upstream_user_header: Option<String>,
    /// Who answers EAS Provision: `upstream` passes it to the mail server; `gateway` hands out
    /// easgate's EAS policies (`easgate eas-policy`) and sends commands without the current
    /// policy key back to provision. Remote wipes work in both [default: upstream].
    #[arg(long, env = "EASGATE_PROVISION", value_name = "MODE")]
    pub provision: Option<String>,
    /// Longest wait for the upstream's answer, except Ping and Sync, which may wait up to an
    /// hour [default: 120s].
    #[arg(long, env = "EASGATE_UPSTREAM_TIMEOUT", value_name = "DURATION")]
    pub upstream_timeout: Option<String>,
    /// The gateway's TLS certificate chain (PEM) [default: DATA/gateway.pem, made at first start].
    #[arg(
        long,
        env = "EASGATE_GATEWAY_CERT",
        value_name = "FILE",
        requires = "gateway_key"
    )]
    pub gateway_cert: Option<String>,
    /// The key of --gateway-cert (PEM).
    #[arg(
        long,
        env = "EASGATE_GATEWAY_KEY",
        value_name = "FILE",
        requires = "gateway_cert"
    )]
    pub gateway_key: Option<String>,
    /// Certificate SANs that name the user, in order of preference [default: upn,email].
    #[arg(long, env = "EASGATE_IDENTITY_ORDER", value_name = "LIST")]
    pub identity_order: Option<String>,
    /// Longest a trusted external CA's CRL is used before it is fetched again (sooner at its
    /// nextUpdate) [default: 1h].
    #[arg(long, env = "EASGATE_CRL_MAX_AGE", value_name = "DURATION")]
    pub crl_max_age: Option<String>,
    /// DANGER: accept certificates of trusted CAs whose CRL cannot be fetched or has expired
    /// (fail open). Without it such certificates are refused.
    #[arg(long, env = "EASGATE_DANGER_ALLOW_UNKNOWN_REVOCATION")]
    pub danger_allow_unknown_revocation: bool,
    /// How often full CRLs are re-made [default: 12h].
    #[arg(long, env = "EASGATE_CRL_INTERVAL", value_name = "DURATION")]
    pub crl_interval: Option<String>,
    /// Full CRL lifetime (nextUpdate - thisUpdate) [default: 24h].
    #[arg(long, env = "EASGATE_CRL_VALIDITY", value_name = "DURATION")]
    pub crl_validity: Option<String>,
    /// Longest wait from a revocation to the delta CRL that lists it [default: 60s].
    #[arg(long, env = "EASGATE_DELTA_CRL_DELAY", value_name = "DURATION")]
    pub delta_crl_delay: Option<String>,
    /// Delta CRL lifetime [default: 1h].
    #[arg(long, env = "EASGATE_DELTA_CRL_VALIDITY", value_name = "DURATION")]
    pub delta_crl_validity: Option<String>,
    /// OCSP response lifetime (nextUpdate - thisUpdate) [default: 1h].
    #[arg(long, env = "EASGATE_OCSP_VALIDITY", value_name = "DURATION")]
    pub ocsp_validity: Option<String>,
    /// How often the store is polled for changes made elsewhere (CLI, other nodes) [default: 1s].
    /// On PostgreSQL, instances are also told of each change at once (LISTEN/NOTIFY); the poll
    /// is the fallback.
    #[arg(long, env = "EASGATE_CHANGE_POLL_INTERVAL", value_name = "DURATION")]
    pub change_poll_interval: Option<String>,
    /// How long the gateway keeps deciding from its in-memory state while the database cannot
    /// be reached. Past it, managed devices of our CAs are refused (fail closed: a revocation
    /// made elsewhere may be missing) until the database answers again [default: 5m].
    #[arg(long, env = "EASGATE_MAX_STALENESS", value_name = "DURATION")]
    pub max_staleness: Option<String>,
    /// How often certificates are checked for their renewal window; each one inside it gets
    /// a renewal enrollment (new challenge + profile link) once [default: 1h].
    #[arg(long, env = "EASGATE_RENEWAL_INTERVAL", value_name = "DURATION")]
    pub renewal_interval: Option<String>,
    /// POST a JSON event here for each renewal enrollment started (http:// or https://).
    #[arg(long, env = "EASGATE_RENEWAL_WEBHOOK", value_name = "URL")]
    pub renewal_webhook: Option<String>,
    /// Public and admin listeners: longest a client may take to send a request head, and
    /// longest a keep-alive connection may sit idle [default: 15s].
    #[arg(long, env = "EASGATE_HTTP_HEADER_TIMEOUT", value_name = "DURATION")]
    pub http_header_timeout: Option<String>,
    /// Public and admin listeners: most connections open at once, each; more are closed as
    /// they arrive [default: 1024].
    #[arg(long, env = "EASGATE_HTTP_MAX_CONNECTIONS", value_name = "N")]
    pub http_max_connections: Option<usize>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KeyArg {
    #[value(name = "rsa-2048")]
    Rsa2048,
    #[value(name = "rsa-3072")]
    Rsa3072,
    #[value(name = "rsa-4096")]
    Rsa4096,
    #[value(name = "ec-p256")]
    EcP256,
    #[value(name = "ec-p384")]
    EcP384,
}

impl From<KeyArg> for easgate_pki::KeyType {
    fn from(k: KeyArg) -> Self {
        use easgate_pki::KeyType as K;
        match k {
            KeyArg::Rsa2048 => K::Rsa2048,
            KeyArg::Rsa3072 => K::Rsa3072,
            KeyArg::Rsa4096 => K::Rsa4096,
            KeyArg::EcP256 => K::EcP256,
            KeyArg::EcP384 => K::EcP384,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create a CA with a new key (encrypted with the master key at rest).
    Create {
        /// Name used in URLs: /crl/NAME.crl, /scep/NAME, …
        name: String,
        /// Key type of the CA key.
        #[arg(long, value_enum, default_value = "ec-p256")]
        key: KeyArg,
        /// Subject DN, e.g. 'CN=Corp Mail Devices CA,O=Corp,C=DE'. Default: 'CN=easgate NAME CA'.
        #[arg(long, value_name = "DN")]
        subject: Option<String>,
        /// Validity of the CA certificate in days.
        #[arg(long, value_name = "N", default_value_t = 3650)]
        validity_days: u32,
        /// A static SCEP challenge for this CA (see `ca set-scep-challenge`).
        #[arg(long, value_name = "SECRET", hide_env_values = true)]
        scep_static_challenge: Option<String>,
        /// Refuse SCEP requests encrypted with single DES (failInfo badAlg); see `ca set-scep-des`.
        #[arg(long)]
        scep_no_des: bool,
    },
    /// What an EC CA's GetCACert holds: the CA and its RSA RA (the default, as RFC 8894 asks),
    /// or the RA alone, for clients that encrypt to every certificate of the answer and fail
    /// on an EC one (micromdm's scepclient: then it enrolls without -ca-fingerprint). Clients
    /// that check the chain (iOS, strongSwan) need the default.
    SetScepCacert {
        name: String,
        /// The RA certificate alone.
        #[arg(
            long,
            conflicts_with = "standard",
            required_unless_present = "standard"
        )]
        ra_only: bool,
        /// The CA and the RA (default).
        #[arg(long)]
        standard: bool,
    },
    /// Refuse or accept again SCEP requests encrypted with single DES. Accepted by default:
    /// micromdm's scepclient and other old clients send nothing else.
    SetScepDes {
        name: String,
        /// Refuse single DES (failInfo badAlg).
        #[arg(long, conflicts_with = "accept", required_unless_present = "accept")]
        refuse: bool,
        /// Accept single DES again.
        #[arg(long)]
        accept: bool,
    },
    /// Remove a CA: it is no longer listed, served (certificate, CRLs, OCSP, SCEP) or trusted
    /// by the gateway; its record stays for the certificates it issued, and its name is free.
    /// Refused while it has valid device certificates unless --revoke-all.
    Remove {
        name: String,
        /// Revoke its valid device certificates (cessationOfOperation) first.
        #[arg(long)]
        revoke_all: bool,
    },
    /// Set or remove the CA's static SCEP challenge (one secret for every device; the device is
    /// then named by the CSR's CN and must be enrolled). Prefer per-device challenges.
    SetScepChallenge {
        name: String,
        /// The challenge (at least 8 characters); also EASGATE_SCEP_CHALLENGE.
        #[arg(
            long,
            env = "EASGATE_SCEP_CHALLENGE",
            hide_env_values = true,
            conflicts_with = "none"
        )]
        challenge: Option<String>,
        /// Remove the static challenge.
        #[arg(long)]
        none: bool,
    },
    /// List CAs.
    List,
    /// Show one CA: subject, fingerprint, validity and its public URLs.
    Show { name: String },
    /// Write the CA certificate (for devices, mail servers, Entra).
    Export {
        name: String,
        #[arg(long, value_enum, default_value = "pem")]
        format: CertFormat,
        /// Write to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Print PowerShell that uploads the CA with its CRL and delta-CRL URLs to Microsoft Entra ID.
    EntraScript { name: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CertFormat {
    Der,
    Pem,
}

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Trust an external CA's device certificates.
    Add {
        name: String,
        /// The CA certificate (PEM or DER).
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
        /// Where its full CRL is published.
        #[arg(long, value_name = "URL")]
        crl_url: Option<String>,
        /// Where its delta CRL is published.
        #[arg(long, value_name = "URL")]
        delta_crl_url: Option<String>,
    },
    /// List trusted external CAs.
    List,
    /// Stop trusting an external CA.
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user.
    Add {
        /// User principal name, e.g. alice@corp.example.com.
        upn: String,
        /// Primary SMTP address of the mailbox.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Group membership (repeatable); groups must exist.
        #[arg(long = "group", value_name = "G")]
        groups: Vec<String>,
    },
    /// List users.
    List,
    /// Show one user.
    Show { upn: String },
    /// Disable a user and revoke every certificate of their devices (affiliationChanged).
    Disable { upn: String },
    /// Enable a disabled user (revoked certificates stay revoked).
    Enable { upn: String },
    /// Remove a user who never had a device (a typo, someone who never enrolled). A user
    /// with devices is disabled instead (`user disable`): their certificates stay attributable.
    Remove { upn: String },
    /// Change a user: email, display name, groups. Certificates already issued keep the
    /// names they carry; `easgate device reenroll` gets a device one with the new ones.
    Set {
        upn: String,
        /// New primary SMTP address.
        #[arg(long)]
        email: Option<String>,
        /// New display name.
        #[arg(long)]
        name: Option<String>,
        /// Add to this group (repeatable).
        #[arg(long = "add-group", value_name = "G")]
        add_groups: Vec<String>,
        /// Take out of this group (repeatable).
        #[arg(long = "remove-group", value_name = "G")]
        remove_groups: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Add a group.
    Add { name: String },
    /// List groups with their member counts.
    List,
    /// Remove a group (its memberships go with it); refused while an access rule or a
    /// profile names it.
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Create a template. Lookup values: {DeviceUid} {UserPrincipalName} {EmailAddress}
    /// {UserName} {DisplayName} {DeviceSerial} {Platform}.
    Create {
        name: String,
        /// The CA that signs certificates of this template.
        #[arg(long)]
        ca: String,
        /// Subject DN template, e.g. 'CN={DeviceUid}'.
        #[arg(long, value_name = "TEMPLATE")]
        subject: String,
        /// Subject alternative name (repeatable): email:T, upn:T, dns:T, uri:T or ip:T.
        #[arg(long = "san", value_name = "TYPE:TEMPLATE")]
        sans: Vec<String>,
        /// Key type for server-generated keys (PKCS#12 delivery).
        #[arg(long, value_enum, default_value = "rsa-2048")]
        key: KeyArg,
        /// Validity of issued certificates in days.
        #[arg(long, value_name = "N")]
        validity_days: Option<u32>,
        /// Renewal window: devices renew this many days before expiry (default 30).
        #[arg(long, value_name = "N")]
        renew_before_days: Option<u32>,
        /// Make this the template used when `device enroll` names none.
        #[arg(long)]
        default: bool,
    },
    /// List templates.
    List,
    /// Show one template.
    Show { name: String },
    /// Change a template (its name and CA stay). Certificates already issued keep what they
    /// carry; renewals and new devices get the new form.
    Set {
        name: String,
        /// Subject DN template.
        #[arg(long, value_name = "TEMPLATE")]
        subject: Option<String>,
        /// Replace every SAN (repeatable): email:T, upn:T, dns:T, uri:T or ip:T.
        #[arg(long = "san", value_name = "TYPE:TEMPLATE")]
        sans: Vec<String>,
        /// Key type for server-generated keys.
        #[arg(long, value_enum)]
        key: Option<KeyArg>,
        #[arg(long, value_name = "N")]
        validity_days: Option<u32>,
        #[arg(long, value_name = "N")]
        renew_before_days: Option<u32>,
    },
    /// Make this the template devices get when `device enroll` names none.
    Default { name: String },
    /// Remove a template that no device, certificate or profile refers to.
    Remove { name: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PlatformArg {
    Ios,
    Android,
    Windows,
}

impl PlatformArg {
    pub fn as_str(self) -> &'static str {
        match self {
            PlatformArg::Ios => "ios",
            PlatformArg::Android => "android",
            PlatformArg::Windows => "windows",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Enroll a device: creates its record and a one-time SCEP challenge bound to it.
    Enroll {
        #[arg(long, value_name = "UPN")]
        user: String,
        #[arg(long, value_enum)]
        platform: PlatformArg,
        /// Template (default: the only one, or the one marked default).
        #[arg(long, value_name = "T")]
        template: Option<String>,
        /// Device uid (default: generated).
        #[arg(long, value_name = "UID")]
        uid: Option<String>,
        /// Hardware serial number, for the {DeviceSerial} lookup value.
        #[arg(long = "serial-number", value_name = "SERIAL")]
        serial_number: Option<String>,
        /// Days the one-time challenge stays usable.
        #[arg(long, value_name = "N", default_value_t = 7)]
        challenge_days: u32,
    },
    /// List devices.
    List {
        /// Only this user's devices.
        #[arg(long, value_name = "UPN")]
        user: Option<String>,
    },
    /// Show one device and its certificates.
    Show { uid: String },
    /// A new one-time SCEP challenge and profile link for a device (the old ones stop
    /// working): when a mail scanner opened the link first, or the phone was reset. The
    /// device record, its certificates and history stay.
    Reenroll {
        uid: String,
        /// Days the one-time challenge stays usable.
        #[arg(long, value_name = "N", default_value_t = 7)]
        challenge_days: u32,
    },
    /// Retire a device: revoke its certificates (cessationOfOperation).
    Retire { uid: String },
    /// Wipe a device: a full remote wipe of every EAS DeviceId its certificates were used
    /// with (`eas wipe`); once a phone acknowledges, the device is marked wiped and its
    /// certificates are revoked (cessationOfOperation). A device never seen at the gateway is
    /// marked wiped and its certificates revoked at once.
    Wipe { uid: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusArg {
    Valid,
    Revoked,
    Expired,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReasonArg {
    #[value(name = "unspecified")]
    Unspecified,
    #[value(name = "keyCompromise")]
    KeyCompromise,
    #[value(name = "affiliationChanged")]
    AffiliationChanged,
    #[value(name = "superseded")]
    Superseded,
    #[value(name = "cessationOfOperation")]
    CessationOfOperation,
    #[value(name = "certificateHold")]
    CertificateHold,
}

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Issue a certificate for a device from a CSR, or with a key easgate generates.
    #[command(group(ArgGroup::new("key-source").required(true).args(["csr", "out_key"])))]
    Issue {
        #[arg(long, value_name = "T")]
        template: String,
        #[arg(long, value_name = "UID")]
        device: String,
        /// PKCS#10 request (PEM or DER); only its public key is used.
        #[arg(long, value_name = "FILE")]
        csr: Option<PathBuf>,
        /// Generate the key and write it here (PKCS#8 PEM, mode 0600).
        #[arg(long, value_name = "FILE")]
        out_key: Option<PathBuf>,
        /// Where to write the certificate (PEM).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Also write a PKCS#12 bundle (key, certificate, CA); needs --out-key.
        #[arg(
            long,
            value_name = "FILE",
            requires = "p12_password",
            conflicts_with = "csr"
        )]
        p12: Option<PathBuf>,
        /// Password of the PKCS#12 bundle.
        #[arg(
            long,
            value_name = "P",
            env = "EASGATE_P12_PASSWORD",
            hide_env_values = true
        )]
        p12_password: Option<String>,
    },
    /// List certificates.
    List {
        #[arg(long, value_name = "UID")]
        device: Option<String>,
        #[arg(long, value_enum, conflicts_with = "expiring")]
        status: Option<StatusArg>,
        /// Only valid certificates inside their template's renewal window (not_after minus
        /// --renew-before-days) whose device has no newer certificate yet.
        #[arg(long)]
        expiring: bool,
    },
    /// Show one certificate (serial in any case, with or without colons).
    Show {
        serial: String,
        /// Also print the certificate PEM.
        #[arg(long)]
        pem: bool,
    },
    /// Revoke a certificate.
    Revoke {
        serial: String,
        #[arg(long, value_enum, default_value = "unspecified")]
        reason: ReasonArg,
    },
    /// Explain whether a certificate is fit for EAS certificate authentication.
    /// Exit 0: fit; 1: at least one check failed.
    Doctor {
        /// Certificate file (PEM or DER).
        file: PathBuf,
        /// Check against this CA only.
        #[arg(long)]
        ca: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CrlCommand {
    /// Sign and publish a CRL of CA now (a running server serves it within seconds).
    Generate {
        ca: String,
        /// A delta CRL (revocations since the latest full CRL) instead of a full one.
        #[arg(long)]
        delta: bool,
        /// Time until nextUpdate (default 24h for a full CRL, 1h for a delta).
        #[arg(long, value_name = "DURATION")]
        validity: Option<String>,
        /// Also write the CRL (DER) to FILE.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// How far back: a duration (90s, 30m, 24h, 7d) or a time (2026-12-01T00:00:00Z).
    #[arg(long, value_name = "WHEN", default_value = "24h")]
    pub since: String,
    /// Only events by this actor, e.g. `token:intune`, `cli:root`, `gateway`.
    #[arg(long)]
    pub actor: Option<String>,
    /// Only this action, e.g. `cert.revoke`, or a family: `gateway` for `gateway.*`.
    #[arg(long)]
    pub action: Option<String>,
    /// Only events about this subject: a device uid, serial, user, rule, …
    #[arg(long)]
    pub subject: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ActionArg {
    Allow,
    Block,
    Quarantine,
}

impl ActionArg {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionArg::Allow => "allow",
            ActionArg::Block => "block",
            ActionArg::Quarantine => "quarantine",
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RulePlatformArg {
    Ios,
    Android,
    Windows,
    Other,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ClientArg {
    Native,
    Outlook,
    Other,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DeviceStateArg {
    Managed,
    Unmanaged,
}

/// Contract words of a value enum (`ios`, `outlook`, `managed`).
pub fn word<T: ValueEnum>(value: &T) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

/// Order of decision (docs/security.md): hard refusals first — a certificate that failed a
/// check, a disabled user, a request `User` that is not the certificate's, a certificate bound
/// to another DeviceId, and with --upstream-auth trusted-header any request without a valid
/// certificate; no override, rule or default can allow those. Then a per-device override
/// (`easgate eas allow|block|quarantine`), then the rules by ascending priority (ties by name;
/// the first rule whose every given condition holds decides; a condition given several times
/// matches any of its values), then the default action. A new install has one rule,
/// `allow-managed` (priority 100), and the default `block`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Add a rule.
    ///
    /// Example: quarantine unmanaged Android devices of the sales group:
    ///   easgate policy add sales-android --priority 50 --group sales --platform android
    ///       --device-state unmanaged --action quarantine
    #[command(verbatim_doc_comment)]
    Add {
        name: String,
        /// Lower runs first [default: after every existing rule].
        #[arg(long, allow_negative_numbers = true)]
        priority: Option<i32>,
        /// The request's user (UPN) is one of these (repeatable).
        #[arg(long = "user", value_name = "UPN")]
        users: Vec<String>,
        /// The user is in one of these groups (repeatable).
        #[arg(long = "group", value_name = "G")]
        groups: Vec<String>,
        /// Device platform (from DeviceType and User-Agent; repeatable).
        #[arg(long = "platform", value_enum)]
        platforms: Vec<RulePlatformArg>,
        /// Mail client: the platform's own mail app, Outlook, or anything else (repeatable).
        #[arg(long = "client", value_enum)]
        clients: Vec<ClientArg>,
        /// managed = a valid certificate of an enrolled device (or of a trusted CA);
        /// unmanaged = no certificate (repeatable). A certificate that fails a check is
        /// refused before any rule.
        #[arg(long = "device-state", value_enum)]
        device_states: Vec<DeviceStateArg>,
        /// The client's address is in this network, e.g. 10.0.0.0/8 (repeatable).
        #[arg(long = "network", value_name = "CIDR")]
        networks: Vec<String>,
        #[arg(long, value_enum)]
        action: ActionArg,
    },
    /// List rules in evaluation order, with the default action.
    List,
    /// Remove a rule.
    Remove { name: String },
    /// Set the action for requests no rule matches.
    Default {
        #[arg(value_enum)]
        action: ActionArg,
    },
    /// What-if: the decision for a request like this, and what made it, in the gateway's
    /// order (hard refusals, override, rules, default).
    ///
    /// Example: would alice's phone get in with its certificate revoked?
    ///   easgate policy test --user alice@corp.example --cert revoked --device-id ApplF17XK2Q3
    #[command(verbatim_doc_comment)]
    Test {
        /// The user (UPN) of the request; groups come from the directory.
        #[arg(long)]
        user: String,
        #[arg(long, value_enum, default_value = "other")]
        platform: RulePlatformArg,
        #[arg(long, value_enum, default_value = "native")]
        client: ClientArg,
        /// managed = --cert valid; unmanaged = --cert none.
        #[arg(long = "device-state", value_enum)]
        device_state: Option<DeviceStateArg>,
        /// The certificate the request presents: valid, none, or one that is revoked, expired
        /// or of a foreign CA [default: valid, or none with --device-state unmanaged].
        #[arg(long, value_enum)]
        cert: Option<CertStateArg>,
        /// The client's IP address.
        #[arg(long)]
        ip: Option<String>,
        /// An EAS DeviceId, to take its override into account (and, without a valid
        /// certificate, whether the DeviceId is bound to one: a possible spoof).
        #[arg(long = "device-id", value_name = "EAS_DEVICE_ID")]
        device_id: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum EasCommand {
    /// List device partnerships: user, DeviceId, model, client, last sync, access state.
    List {
        /// Only this user's partnerships.
        #[arg(long, value_name = "UPN")]
        user: Option<String>,
    },
    /// Everything known of one EAS DeviceId: partnerships, override, bound certificates.
    Show { eas_device_id: String },
    /// Let this device through, whatever the rules say — with a valid certificate only.
    ///
    /// Hard refusals still apply (revoked or failed certificate, retired device, disabled
    /// user, another user's `User`). A request that names this DeviceId without the
    /// certificate bound to it never inherits the override.
    Allow {
        eas_device_id: String,
        #[arg(long)]
        reason: Option<String>,
        /// Also let it through without a certificate (a device not enrolled). Only with
        /// --upstream-auth passthrough, where the mail server still asks for the user's own
        /// password; listed with a warning in `eas list`.
        #[arg(long)]
        unmanaged: bool,
    },
    /// Refuse this device (HTTP 403, EAS status 129), whatever the rules say.
    Block {
        eas_device_id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Hold this device: it gets a notice message and nothing reaches the mail server.
    Quarantine {
        eas_device_id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Forget the device's partnerships, override and wipe record (the rules decide again).
    Clear { eas_device_id: String },
    /// Remotely wipe this device: its next request is told to provision, and the gateway's
    /// Provision answer orders the wipe (in either --provision mode). Once the device
    /// acknowledges, it is refused and its certificates are revoked (cessationOfOperation).
    /// State: pending, then sent, then succeeded (or failed); see `eas show`.
    Wipe {
        eas_device_id: String,
        /// Remove only the mail account and its data, leaving the person's own data (EAS 16.1
        /// devices only; refused for older ones, never turned into a full wipe).
        #[arg(long, conflicts_with = "cancel")]
        account_only: bool,
        /// Withdraw a wipe that has not been sent yet.
        #[arg(long)]
        cancel: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum EasPolicyCommand {
    /// Create an EAS policy. Passcode settings need --require-passcode. Devices of its users
    /// provision again when a policy is replaced (its key changes).
    Create {
        name: String,
        #[command(flatten)]
        settings: EasPolicyArgs,
        /// Replace an existing policy of this name with exactly these settings.
        #[arg(long)]
        replace: bool,
    },
    /// List EAS policies with their groups and keys.
    List,
    /// Show one EAS policy: its settings, groups and key.
    Show { name: String },
    /// Remove an EAS policy (its users get the default, or the built-in empty one).
    Remove { name: String },
}

/// An EAS policy's settings and assignment, as `eas-policy create` takes them.
#[derive(Debug, Args)]
pub struct EasPolicyArgs {
    /// Require a device passcode.
    #[arg(long)]
    require_passcode: bool,
    /// Shortest passcode (1-16).
    #[arg(long, value_name = "N")]
    min_passcode_length: Option<u8>,
    /// Require letters and digits in the passcode.
    #[arg(long)]
    alphanumeric: bool,
    /// Lock the device after this many idle minutes (1-166).
    #[arg(long, value_name = "N")]
    max_inactivity_minutes: Option<u32>,
    /// Require device encryption.
    #[arg(long)]
    require_encryption: bool,
    /// Wipe the device after this many failed passcode attempts (4-16).
    #[arg(long, value_name = "N")]
    max_failed_attempts: Option<u8>,
    /// Whether simple passcodes (1111, 1234) are allowed.
    #[arg(long, value_name = "BOOL")]
    allow_simple_passcode: Option<bool>,
    /// Days until the passcode must change (1-730).
    #[arg(long, value_name = "N")]
    passcode_expiration_days: Option<u32>,
    /// Earlier passcodes that may not be reused (1-50).
    #[arg(long, value_name = "N")]
    passcode_history: Option<u32>,
    /// Whether the camera may be used.
    #[arg(long, value_name = "BOOL")]
    allow_camera: Option<bool>,
    /// Whether storage cards may be used.
    #[arg(long, value_name = "BOOL")]
    allow_storage_card: Option<bool>,
    /// A group whose users get this policy (repeatable). With several policies for a
    /// user's groups, the first by name applies.
    #[arg(long = "group", value_name = "G")]
    groups: Vec<String>,
    /// The policy of users in none of the assigned groups.
    #[arg(long)]
    default: bool,
}

impl From<EasPolicyArgs> for easgate_ops::eas_policies::PolicySpec {
    fn from(a: EasPolicyArgs) -> Self {
        easgate_ops::eas_policies::PolicySpec {
            require_passcode: a.require_passcode,
            min_passcode_length: a.min_passcode_length,
            alphanumeric: a.alphanumeric,
            max_inactivity_minutes: a.max_inactivity_minutes,
            require_encryption: a.require_encryption,
            max_failed_attempts: a.max_failed_attempts,
            allow_simple_passcode: a.allow_simple_passcode,
            passcode_expiration_days: a.passcode_expiration_days,
            passcode_history: a.passcode_history,
            allow_camera: a.allow_camera,
            allow_storage_card: a.allow_storage_card,
            groups: a.groups,
            is_default: a.default,
        }
    }
}

/// The certificate `policy test` simulates.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CertStateArg {
    Valid,
    None,
    Revoked,
    Expired,
    Foreign,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProfilePlatformArg {
    Ios,
    Android,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DeliveryArg {
    /// The phone makes its key and enrolls over SCEP with a one-time challenge.
    Scep,
    /// easgate makes the key; a password-protected PKCS#12 (AES-256, HMAC-SHA-256).
    Pkcs12,
    /// The same with 3DES and an SHA-1 MAC, for old devices.
    #[value(name = "pkcs12-legacy")]
    Pkcs12Legacy,
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Create a profile. Email and user name are lookup-value templates like
    /// `{EmailAddress}`; the host is the gateway's name as phones reach it, without
    /// https:// or /Microsoft-Server-ActiveSync.
    Create {
        name: String,
        #[arg(long, value_enum)]
        platform: ProfilePlatformArg,
        /// Certificate template the credential comes from.
        #[arg(long, value_name = "T")]
        template: String,
        /// The gateway's host name (optionally :port), e.g. mail.example.com.
        #[arg(long, value_name = "HOST")]
        eas_host: String,
        /// The account's name on the phone.
        #[arg(long, value_name = "TEXT")]
        account_name: String,
        /// Email address [default: {EmailAddress}].
        #[arg(long, value_name = "TEMPLATE")]
        email: Option<String>,
        /// User name [default: {UserPrincipalName}].
        #[arg(long, value_name = "TEMPLATE")]
        username: Option<String>,
        /// Domain put in front of the user name (DOMAIN\\user).
        #[arg(long, value_name = "D")]
        domain: Option<String>,
        #[arg(long, value_enum, default_value = "scep")]
        delivery: DeliveryArg,
        /// Only for users in this group (repeatable); a device gets the profile of its
        /// platform that names one of its user's groups, else one without groups.
        #[arg(long = "group", value_name = "G")]
        groups: Vec<String>,
    },
    /// List profiles.
    List,
    /// Show one profile.
    Show { name: String },
    /// Remove a profile. Enrollment links pick their profile when used, so links handed out
    /// earlier get another fitting profile (or 409 if none is left).
    Remove { name: String },
    /// Render a profile for one device: a fresh one-time SCEP challenge (scep) or a new
    /// certificate and key (pkcs12) each time.
    Render {
        name: String,
        #[arg(long, value_name = "UID")]
        device: String,
        /// CMS-sign the profile (iOS) with the CA's profile-signing certificate.
        #[arg(long)]
        signed: bool,
        /// Write it here (mode 0600: it holds a challenge or key) instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}
