//! Identifiers in Stytch's test-environment formats.

/// 128 random bits in the 8-4-4-4-12 layout of a version 4 UUID.
pub fn uuid_ish() -> String {
    let bits: u128 = rand::random();
    let bits = (bits & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        bits >> 96,
        (bits >> 80) & 0xffff,
        (bits >> 64) & 0xffff,
        (bits >> 48) & 0xffff,
        bits & 0xffff_ffff_ffff,
    )
}

pub fn request_id() -> String {
    format!("request-id-test-{}", uuid_ish())
}

pub fn connection_id() -> String {
    format!("oidc-connection-test-{}", uuid_ish())
}

pub fn organization_id() -> String {
    format!("organization-test-{}", uuid_ish())
}

pub fn member_id() -> String {
    format!("member-test-{}", uuid_ish())
}

pub fn member_session_id() -> String {
    format!("member-session-test-{}", uuid_ish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_stytch_test_ids_and_do_not_repeat() {
        let first = connection_id();
        let second = connection_id();
        assert!(first.starts_with("oidc-connection-test-"));
        assert_ne!(first, second);

        let uuid = uuid_ish();
        let lengths: Vec<usize> = uuid.split('-').map(str::len).collect();
        assert_eq!(lengths, [8, 4, 4, 4, 12]);
        assert_eq!(&uuid[14..15], "4");
        assert!(request_id().starts_with("request-id-test-"));
    }
}
