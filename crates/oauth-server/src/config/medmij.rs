//! `[medmij]`: the MedMij profile, with its OAuth Client List loaded.

use std::path::PathBuf;

use oauth_core::Scope;
use oauth_medmij::Ocl;

use super::Section;
use super::reader::Keys;

/// The `[medmij]` table, with its OCL loaded and parsed.
#[derive(Debug, Clone)]
pub(crate) struct MedmijSection {
    pub(crate) ocl_path: PathBuf,
    pub(crate) ocl: Ocl,
    pub(crate) min_age: i16,
    pub(crate) require_pkce: bool,
    pub(crate) scopes: Scope,
}

impl Section for MedmijSection {
    const TABLE: &'static str = "medmij";
    const KEYS: &'static [&'static str] = &["ocl", "min_age", "require_pkce", "scopes"];

    fn read(keys: &mut Keys<'_, '_>) -> Option<Self> {
        let at_ocl = keys.path("ocl");
        let ocl_path = match keys.string("ocl") {
            Some(p) => keys.resolve(&p),
            None => {
                keys.error(at_ocl, "is required");
                return None;
            }
        };
        // Bounded to 0..=150, so the narrowing cannot fail.
        let min_age = i16::try_from(keys.int("min_age", 16, 0, 150)).unwrap_or(16);
        let require_pkce = keys.boolean("require_pkce", true);
        if !require_pkce {
            let at = keys.path("require_pkce");
            keys.warn(at, "false departs from RFC 9700 2.1.1: OCL clients may skip PKCE");
        }
        let scopes = keys.scope("scopes");
        let text = std::fs::read_to_string(&ocl_path)
            .map_err(|e| keys.error(at_ocl.clone(), format!("cannot read {}: {e}", ocl_path.display())))
            .ok()?;
        let ocl = Ocl::parse(&text).map_err(|e| keys.error(at_ocl, e.to_string())).ok()?;
        Some(MedmijSection { ocl_path, ocl, min_age, require_pkce, scopes: scopes? })
    }
}
