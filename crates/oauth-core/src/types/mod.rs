//! Validated protocol values. Each type has a private field and a parse
//! constructor, so holding one proves the value passed its RFC syntax rules.

mod dpop;
mod grant_type;
mod ids;
mod oidc;
mod origin;
mod pkce;
mod redirect_uri;
mod resource;
mod scope;
mod state;
mod user_code;

pub use dpop::DpopVerified;
pub(crate) use dpop::parse_thumbprint;
pub use grant_type::{GrantType, ResponseType};
pub use ids::{AccessTokenId, AccountId, ClientId, GrantId, SessionId, Sid, TokenHash};
pub use oidc::{Hint, MaxAge, Nonce, Prompt};
pub use origin::{OriginError, WebOrigin};
pub use pkce::{CodeChallenge, CodeVerifier, PkceVerified};
pub use redirect_uri::{RedirectPolicy, RedirectUri, RedirectUriError, RedirectUriMatched};
pub use resource::ResourceUri;
pub use scope::Scope;
pub use state::State;
pub use user_code::{USER_CODE_ALPHABET, USER_CODE_LEN, UserCode};

/// True when every byte of `s` is a visible ASCII character or space
/// (`%x20-7E`, RFC 6749 appendix A's VSCHAR).
fn is_vschar(s: &str) -> bool {
    s.bytes().all(|b| (0x20..=0x7e).contains(&b))
}
