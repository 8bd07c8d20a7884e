//! The checked-in CRD manifest is what the code generates.

use kube::CustomResourceExt;
use stytch_sso_operator::crd::OidcConnection;

#[test]
fn checked_in_crd_matches_the_generated_one() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crds/oidcconnections.sso.stytch-operator.dev.yaml"
    );
    let checked_in = std::fs::read_to_string(path).expect("crds/ manifest is readable");
    let generated = serde_saphyr::to_string(&OidcConnection::crd()).expect("CRD renders as YAML");
    assert!(
        checked_in == generated,
        "{path} is stale; regenerate it with: cargo run -- crd > {path}"
    );
}
