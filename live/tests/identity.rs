//! The identity file: made on first run with mode 0600, read back as the same key, and
//! refused with a message naming the fix when others can read it or it is damaged; and the
//! trust files and `security:` config a node is admitted by.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use x0_live::config::{NodeConfig, TrustConfig};
use x0_live::identity::{self, IdentityError};
use x0_live::trust;
use x0tta6bl4::ids::NodeId;
use x0tta6bl4::pq::{CryptoRng, SigningKey};
use x0tta6bl4::secure::Certificate;

/// A fresh directory under the system temp dir, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("x0-identity-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn first_run_makes_a_private_key_that_later_runs_read_back() {
    let dir = Dir::new("roundtrip");
    let path = dir.0.join("node.key");
    let made = identity::load_or_create(&path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let again = identity::load_or_create(&path).unwrap();
    assert_eq!(made.key.public(), again.key.public());
    assert_eq!(made.secret_seed, again.secret_seed);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&format!("key_id: {}", made.key.public().key_id().to_hex())), "{text}");
}

#[test]
fn a_key_file_others_can_read_is_refused() {
    let dir = Dir::new("exposed");
    let path = dir.0.join("node.key");
    identity::load_or_create(&path).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o660] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = identity::load_or_create(&path).err().expect("exposed key accepted");
        assert!(matches!(err, IdentityError::Exposed { mode: m, .. } if m == mode), "{err}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}

#[test]
fn damaged_key_files_are_refused_naming_the_line() {
    let dir = Dir::new("damaged");
    let path = dir.0.join("node.key");
    let good = {
        identity::load_or_create(&path).unwrap();
        std::fs::read_to_string(&path).unwrap()
    };
    let write = |text: &str| {
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        identity::load_or_create(&path).err().expect("damaged key accepted").to_string()
    };
    let lines: Vec<&str> = good.lines().collect();
    // The pre-keys format (one line of 64 hex digits).
    assert!(write(&format!("{}\n", "ab".repeat(32))).contains("line 1: expected `field: value`"));
    // A secret from another key pair.
    let other = Dir::new("other");
    identity::load_or_create(&other.0.join("k")).unwrap();
    let other_secret = std::fs::read_to_string(other.0.join("k")).unwrap().lines().nth(3).unwrap().to_string();
    let err = write(&format!("{}\n{}\n{}\n{}\n", lines[0], lines[1], lines[2], other_secret));
    assert!(err.contains("does not sign for the public key"), "{err}");
    // A key id that is not the public key's.
    let err = write(&format!("{}\nkey_id: {}\n{}\n{}\n", lines[0], "00".repeat(32), lines[2], lines[3]));
    assert!(err.contains("line 2: `key_id` is not the SHA-256"), "{err}");
    // A truncated public key.
    let err = write(&format!("{}\n{}\n{}\n", lines[0], &lines[2][..100], lines[3]));
    assert!(err.contains("public key is 46 bytes"), "{err}");
    assert!(write("# nothing\n").contains("needs both `public` and `secret`"));
}

/// A config naming `security`, with the required fields around it.
fn config_with(security: &str) -> Result<NodeConfig, String> {
    let text = format!("node_id: 1\nidentity: /tmp/none.key\ninterfaces: [eth0]\nsecurity: {security}\n");
    NodeConfig::parse(&text, "node.yaml").map_err(|e| e.to_string())
}

#[test]
fn the_security_section_takes_an_anchor_and_certificate_or_an_allowlist() {
    let anchored = config_with("{ anchor: a.pub, certificate: n.cert }").expect("valid");
    assert_eq!(anchored.security, Some(TrustConfig::Anchor { anchor: "a.pub".into(), certificate: "n.cert".into() }));
    let id = "ab".repeat(32);
    let listed = config_with(&format!("{{ allowlist: [{id}] }}")).expect("valid");
    assert!(matches!(listed.security, Some(TrustConfig::Allowlist(k)) if k.len() == 1));

    let half = config_with("{ anchor: a.pub }").unwrap_err();
    assert!(half.contains("node.yaml") && half.contains("`anchor` and `certificate` go together"), "{half}");
    let both = config_with(&format!("{{ anchor: a.pub, certificate: n.cert, allowlist: [{id}] }}")).unwrap_err();
    assert!(both.contains("not both"), "{both}");
    let bad = config_with("{ allowlist: [abc] }").unwrap_err();
    assert!(bad.contains("security.allowlist[0]") && bad.contains("64 hex digits"), "{bad}");
}

#[test]
fn anchor_and_certificate_files_round_trip_and_must_name_this_node() {
    let dir = Dir::new("trust");
    let mut rng = CryptoRng::from_seed([3; 32]);
    let anchor = SigningKey::generate(&mut rng);
    let anchor_file = dir.0.join("anchor.pub");
    trust::write_anchor(&anchor_file, anchor.public()).expect("written");
    assert_eq!(trust::read_anchor(&anchor_file).expect("read back").as_bytes(), anchor.public().as_bytes());

    let key_file = dir.0.join("node.key");
    let key = identity::load_or_create(&key_file).expect("made").key;
    let cert = Certificate::issue(&anchor, &mut rng, NodeId(7), key.public().key_id(), u64::MAX);
    let cert_file = dir.0.join("node.cert");
    trust::write_certificate(&cert_file, &cert).expect("written");
    assert_eq!(trust::read_certificate(&cert_file).expect("read back"), cert);

    let policy = TrustConfig::Anchor { anchor: anchor_file.clone(), certificate: cert_file.clone() };
    let load = || identity::load_or_create(&key_file).expect("read");
    let t = trust::build(&policy, NodeId(7), load(), 0, false).expect("our certificate");
    assert_eq!(t.node_id(), NodeId(7));
    let wrong = trust::build(&policy, NodeId(8), load(), 0, false).unwrap_err().to_string();
    assert!(wrong.contains("certifies node 7") && wrong.contains("this node is 8"), "{wrong}");

    // With an allowlist the id is the key's: the error says which to configure.
    let allow = TrustConfig::Allowlist([key.public().key_id()].into());
    let derived = key.public().key_id().node_id().0;
    let e = trust::build(&allow, NodeId(7), load(), 0, false).unwrap_err().to_string();
    assert!(e.contains(&format!("set `node_id: {derived}`")), "{e}");
    assert!(trust::build(&allow, NodeId(derived), load(), 0, false).is_ok());

    std::fs::write(&cert_file, "certificate: 00ff\n").unwrap();
    let short = trust::read_certificate(&cert_file).unwrap_err().to_string();
    assert!(short.contains("line 1") && short.contains("bytes of certificate"), "{short}");
}
