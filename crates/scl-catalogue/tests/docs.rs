//! `docs/hooks.md` is generated from the catalogue; this test keeps the file in step.
//! `SCL_BLESS=1 cargo test -p scl-catalogue` rewrites it.

#[test]
fn hooks_md_matches_the_catalogue() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/hooks.md");
    let generated = scl_catalogue::markdown();
    if std::env::var_os("SCL_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write docs/hooks.md");
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(on_disk == generated, "docs/hooks.md is stale: run `SCL_BLESS=1 cargo test -p scl-catalogue`");
}

#[test]
fn every_hook_that_requires_a_partner_names_a_real_hook() {
    for h in scl_catalogue::HOOKS {
        if let Some(r) = h.requires {
            let partner = scl_catalogue::hook(r).expect("the partner exists");
            assert_eq!(partner.kinds, h.kinds);
        }
        assert!(!h.targets.is_empty(), "{} runs somewhere", h.name);
    }
}
