//! ID-token validation (OpenID Connect Core §3.1.3.7): the compact JWS is checked against the
//! provider's published keys, then its claims against what this sign-in expects.
//!
//! Positive knowledge only: the algorithms accepted are the asymmetric ones providers actually use
//! (RS256/384/512, PS256/384/512, ES256/384, EdDSA), each bound to the key type it needs, and the
//! key must be one the provider's JWKS lists. `none`, the HMAC family (which would make the
//! client secret a signing key) and any algorithm a key does not declare are refused. Signatures
//! are verified with `ring`, already in the tree through rustls.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm};
use serde::Deserialize;
use serde_json::Value;

/// Clock skew tolerated on `exp`, `iat` and `nbf`.
pub const LEEWAY_SECS: i64 = 60;
/// Largest ID token accepted (a token is a few KB; this bounds the work an attacker can cause).
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// Why an ID token was refused. Logged for the operator; the person signing in sees a generic
/// refusal with the sign-in's reference, since the detail helps an attacker more than them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    /// Not three base64url parts of JSON.
    #[error("the ID token is not a compact JWS: {0}")]
    Malformed(&'static str),
    /// An algorithm outside the accepted set (`none`, HS256, …).
    #[error("the ID token's algorithm `{0}` is not accepted")]
    Algorithm(String),
    /// No published key matches the token's `kid` and algorithm.
    #[error("no key in the provider's JWKS matches the ID token (kid {0:?})")]
    NoKey(Option<String>),
    /// The signature does not verify.
    #[error("the ID token's signature does not verify")]
    Signature,
    /// A claim is missing or wrong.
    #[error("the ID token's `{claim}` claim {problem}")]
    Claim {
        /// The claim.
        claim: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

/// What the claims must say for this sign-in.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// The provider's issuer, exactly as discovered.
    pub issuer: &'a str,
    /// Our client id.
    pub client_id: &'a str,
    /// The nonce this sign-in sent.
    pub nonce: &'a str,
    /// Now, Unix seconds.
    pub now: i64,
}

/// A published key (RFC 7517), the members this validation reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Jwk {
    /// Key type: `RSA`, `EC`, `OKP`.
    pub kty: String,
    /// Key id.
    #[serde(default)]
    pub kid: Option<String>,
    /// Intended use; a key marked for encryption (`enc`) never verifies a signature.
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    /// The algorithm the key is for, if the provider says.
    #[serde(default)]
    pub alg: Option<String>,
    /// RSA modulus and exponent.
    #[serde(default)]
    pub n: Option<String>,
    /// RSA exponent.
    #[serde(default)]
    pub e: Option<String>,
    /// EC/OKP curve.
    #[serde(default)]
    pub crv: Option<String>,
    /// EC x coordinate, or the OKP public key.
    #[serde(default)]
    pub x: Option<String>,
    /// EC y coordinate.
    #[serde(default)]
    pub y: Option<String>,
}

/// A JWK Set.
#[derive(Debug, Clone, Deserialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// The validated claims, as a map (the caller picks `sub`, `email`, the group claim, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Claims(pub BTreeMap<String, Value>);

impl Claims {
    /// A string claim.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    /// The subject (always present after validation).
    pub fn subject(&self) -> &str {
        self.str("sub").unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

/// The accepted algorithms: name, key type, curve (for EC/OKP), and ring's verifier.
struct Alg {
    name: &'static str,
    kty: &'static str,
    crv: Option<&'static str>,
    verify: &'static dyn VerificationAlgorithm,
    rsa: Option<&'static signature::RsaParameters>,
}

const ALGORITHMS: &[Alg] = &[
    Alg {
        name: "RS256",
        kty: "RSA",
        crv: None,
        verify: &signature::RSA_PKCS1_2048_8192_SHA256,
        rsa: Some(&signature::RSA_PKCS1_2048_8192_SHA256),
    },
    Alg {
        name: "RS384",
        kty: "RSA",
        crv: None,
        verify: &signature::RSA_PKCS1_2048_8192_SHA384,
        rsa: Some(&signature::RSA_PKCS1_2048_8192_SHA384),
    },
    Alg {
        name: "RS512",
        kty: "RSA",
        crv: None,
        verify: &signature::RSA_PKCS1_2048_8192_SHA512,
        rsa: Some(&signature::RSA_PKCS1_2048_8192_SHA512),
    },
    Alg {
        name: "PS256",
        kty: "RSA",
        crv: None,
        verify: &signature::RSA_PSS_2048_8192_SHA256,
        rsa: Some(&signature::RSA_PSS_2048_8192_SHA256),
    },
    Alg {
        name: "PS384",
        kty: "RSA",
        crv: None,
        verify: &signature::RSA_PSS_2048_8192_SHA384,
        rsa: Some(&signature::RSA_PSS_2048_8192_SHA384),
    },
    Alg {
        name: "PS512",
        kty: "RSA",
        crv: None,
        verify: &signature::RSA_PSS_2048_8192_SHA512,
        rsa: Some(&signature::RSA_PSS_2048_8192_SHA512),
    },
    Alg { name: "ES256", kty: "EC", crv: Some("P-256"), verify: &signature::ECDSA_P256_SHA256_FIXED, rsa: None },
    Alg { name: "ES384", kty: "EC", crv: Some("P-384"), verify: &signature::ECDSA_P384_SHA384_FIXED, rsa: None },
    Alg { name: "EdDSA", kty: "OKP", crv: Some("Ed25519"), verify: &signature::ED25519, rsa: None },
];

fn b64(part: &str, what: &'static str) -> Result<Vec<u8>, IdTokenError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| IdTokenError::Malformed(what))
}

/// Validates `token` against `jwks` and `expected`; returns its claims.
pub fn validate(token: &str, jwks: &Jwks, expected: &Expected<'_>) -> Result<Claims, IdTokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(IdTokenError::Malformed("longer than any ID token"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(IdTokenError::Malformed("not three dot-separated parts"));
    };
    let header: Header = serde_json::from_slice(&b64(h, "header is not base64url")?)
        .map_err(|_| IdTokenError::Malformed("header is not JSON"))?;
    if header.crit.is_some() {
        // RFC 7515 §4.1.11: extensions we do not understand must not be ignored.
        return Err(IdTokenError::Malformed("critical header extensions are not supported"));
    }
    let alg =
        ALGORITHMS.iter().find(|a| a.name == header.alg).ok_or_else(|| IdTokenError::Algorithm(header.alg.clone()))?;
    let signature_bytes = b64(s, "signature is not base64url")?;
    let signed = &token[..h.len() + 1 + p.len()];

    let candidates = jwks.keys.iter().filter(|k| {
        k.kty == alg.kty
            && k.use_.as_deref().is_none_or(|u| u == "sig")
            && k.alg.as_deref().is_none_or(|a| a == alg.name)
            && alg.crv.is_none_or(|c| k.crv.as_deref() == Some(c))
            && match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => false,
                (None, _) => true,
            }
    });
    let mut any = false;
    let mut verified = false;
    for key in candidates {
        any = true;
        if verify_with(alg, key, signed.as_bytes(), &signature_bytes) {
            verified = true;
            break;
        }
    }
    if !any {
        return Err(IdTokenError::NoKey(header.kid));
    }
    if !verified {
        return Err(IdTokenError::Signature);
    }

    let claims: BTreeMap<String, Value> = serde_json::from_slice(&b64(p, "payload is not base64url")?)
        .map_err(|_| IdTokenError::Malformed("payload is not a JSON object"))?;
    check_claims(Claims(claims), expected)
}

fn verify_with(alg: &Alg, key: &Jwk, message: &[u8], sig: &[u8]) -> bool {
    let decode = |v: &Option<String>| v.as_deref().and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
    if let Some(params) = alg.rsa {
        let (Some(n), Some(e)) = (decode(&key.n), decode(&key.e)) else { return false };
        return RsaPublicKeyComponents { n: &n, e: &e }.verify(params, message, sig).is_ok();
    }
    let public = match alg.kty {
        "EC" => {
            let (Some(x), Some(y)) = (decode(&key.x), decode(&key.y)) else { return false };
            let mut point = Vec::with_capacity(1 + x.len() + y.len());
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            point
        }
        _ => match decode(&key.x) {
            Some(x) => x,
            None => return false,
        },
    };
    UnparsedPublicKey::new(alg.verify, public).verify(message, sig).is_ok()
}

fn claim(claim: &'static str, problem: impl Into<String>) -> IdTokenError {
    IdTokenError::Claim { claim, problem: problem.into() }
}

fn check_claims(claims: Claims, expected: &Expected<'_>) -> Result<Claims, IdTokenError> {
    match claims.str("iss") {
        Some(iss) if iss == expected.issuer => {}
        Some(_) => return Err(claim("iss", "names another issuer")),
        None => return Err(claim("iss", "is missing")),
    }
    match claims.str("sub") {
        Some(sub) if !sub.is_empty() && sub.len() <= 255 => {}
        _ => return Err(claim("sub", "is missing or not 1–255 characters")),
    }
    let audiences: Vec<&str> = match claims.0.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        // Every entry must be a string: a number or object is not an audience this check can
        // compare, and silently dropping it would let `["mttrly", 5]` skip the `azp` rule.
        Some(Value::Array(list)) if !list.is_empty() && list.iter().all(Value::is_string) => {
            list.iter().filter_map(Value::as_str).collect()
        }
        _ => return Err(claim("aud", "is missing")),
    };
    if !audiences.contains(&expected.client_id) {
        return Err(claim("aud", "does not include this client"));
    }
    if audiences.len() > 1 && claims.str("azp") != Some(expected.client_id) {
        return Err(claim("azp", "must name this client when there are several audiences"));
    }
    if let Some(azp) = claims.str("azp")
        && azp != expected.client_id
    {
        return Err(claim("azp", "names another client"));
    }
    let number = |name: &'static str| claims.0.get(name).and_then(Value::as_i64);
    match number("exp") {
        Some(exp) if exp.saturating_add(LEEWAY_SECS) > expected.now => {}
        Some(_) => return Err(claim("exp", "is in the past: the token expired")),
        None => return Err(claim("exp", "is missing")),
    }
    match number("iat") {
        Some(iat) if iat.saturating_sub(LEEWAY_SECS) <= expected.now => {}
        Some(_) => return Err(claim("iat", "is in the future")),
        None => return Err(claim("iat", "is missing")),
    }
    if let Some(nbf) = number("nbf")
        && nbf.saturating_sub(LEEWAY_SECS) > expected.now
    {
        return Err(claim("nbf", "is in the future"));
    }
    if expected.nonce.is_empty() {
        return Err(claim("nonce", "cannot be checked: this sign-in sent none"));
    }
    match claims.str("nonce") {
        Some(nonce) if constant_time_eq(nonce.as_bytes(), expected.nonce.as_bytes()) => {}
        Some(_) => return Err(claim("nonce", "does not match this sign-in (a replayed token?)")),
        None => return Err(claim("nonce", "is missing")),
    }
    Ok(claims)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
    use serde_json::json;

    use super::*;

    const ISS: &str = "https://idp.example";
    const CLIENT: &str = "mttrly";
    const NONCE: &str = "n-0S6_WzA2Mj";
    const NOW: i64 = 1_800_000_000;

    fn expected() -> Expected<'static> {
        Expected { issuer: ISS, client_id: CLIENT, nonce: NONCE, now: NOW }
    }

    fn claims() -> Value {
        json!({ "iss": ISS, "sub": "248289761001", "aud": CLIENT, "exp": NOW + 300, "iat": NOW, "nonce": NONCE, "email": "bob@example.com", "email_verified": true })
    }

    struct Signer {
        ec: EcdsaKeyPair,
        ed: Ed25519KeyPair,
    }

    fn signer() -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let ec = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let ed = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        Signer { ec, ed }
    }

    impl Signer {
        fn jwks(&self) -> Jwks {
            let point = self.ec.public_key().as_ref();
            serde_json::from_value(json!({ "keys": [
                { "kty": "EC", "kid": "ec1", "use": "sig", "crv": "P-256",
                  "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65]) },
                { "kty": "OKP", "kid": "ed1", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(self.ed.public_key().as_ref()) },
            ]}))
            .unwrap()
        }

        fn sign(&self, header: &Value, claims: &Value) -> String {
            let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap());
            let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
            let input = format!("{h}.{p}");
            let sig = match header["alg"].as_str() {
                Some("EdDSA") => self.ed.sign(input.as_bytes()).as_ref().to_vec(),
                _ => self.ec.sign(&SystemRandom::new(), input.as_bytes()).unwrap().as_ref().to_vec(),
            };
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
        }
    }

    #[test]
    fn a_well_formed_token_from_a_published_key_passes() {
        let s = signer();
        for header in
            [json!({"alg": "ES256", "kid": "ec1"}), json!({"alg": "EdDSA", "kid": "ed1"}), json!({"alg": "ES256"})]
        {
            let token = s.sign(&header, &claims());
            let got = validate(&token, &s.jwks(), &expected()).unwrap();
            assert_eq!(got.subject(), "248289761001");
            assert_eq!(got.str("email"), Some("bob@example.com"));
        }
    }

    #[test]
    fn alg_none_hmac_and_confused_algorithms_are_refused() {
        let s = signer();
        let good = s.sign(&json!({"alg": "ES256", "kid": "ec1"}), &claims());
        let (_, rest) = good.split_once('.').unwrap();
        for alg in ["none", "None", "HS256", "HS512", "ES512", "RSA-OAEP", ""] {
            let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json!({"alg": alg, "kid": "ec1"})).unwrap());
            let forged = format!("{h}.{rest}");
            assert!(matches!(validate(&forged, &s.jwks(), &expected()), Err(IdTokenError::Algorithm(_))), "{alg}");
        }
        // An EC signature presented as EdDSA under the EC key's kid: no OKP key has that kid.
        let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json!({"alg": "EdDSA", "kid": "ec1"})).unwrap());
        assert!(matches!(validate(&format!("{h}.{rest}"), &s.jwks(), &expected()), Err(IdTokenError::NoKey(_))));
        // alg none with an empty signature.
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap());
        assert!(validate(&format!("{h}.{p}."), &s.jwks(), &expected()).is_err());
    }

    #[test]
    fn a_tampered_payload_or_a_stranger_key_fails_the_signature() {
        let s = signer();
        let token = s.sign(&json!({"alg": "ES256", "kid": "ec1"}), &claims());
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut evil = claims();
        evil["sub"] = json!("admin");
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&evil).unwrap());
        assert_eq!(validate(&parts.join("."), &s.jwks(), &expected()), Err(IdTokenError::Signature));
        let stranger = signer();
        let token = stranger.sign(&json!({"alg": "ES256", "kid": "ec1"}), &claims());
        assert_eq!(validate(&token, &s.jwks(), &expected()), Err(IdTokenError::Signature));
        let token = s.sign(&json!({"alg": "ES256", "kid": "other"}), &claims());
        assert_eq!(validate(&token, &s.jwks(), &expected()), Err(IdTokenError::NoKey(Some("other".into()))));
    }

    #[test]
    fn an_encryption_key_or_a_key_for_another_algorithm_never_verifies() {
        let s = signer();
        let token = s.sign(&json!({"alg": "ES256", "kid": "ec1"}), &claims());
        let mut jwks = s.jwks();
        jwks.keys[0].use_ = Some("enc".into());
        assert!(matches!(validate(&token, &jwks, &expected()), Err(IdTokenError::NoKey(_))));
        let mut jwks = s.jwks();
        jwks.keys[0].alg = Some("ES384".into());
        assert!(matches!(validate(&token, &jwks, &expected()), Err(IdTokenError::NoKey(_))));
    }

    type Mutation = Box<dyn Fn(&mut Value)>;

    #[test]
    fn every_claim_rule_refuses_its_violation() {
        let s = signer();
        let cases: Vec<(&str, Mutation)> = vec![
            ("iss", Box::new(|c| c["iss"] = json!("https://idp.example/"))),
            (
                "iss",
                Box::new(|c| {
                    c.as_object_mut().unwrap().remove("iss");
                }),
            ),
            ("sub", Box::new(|c| c["sub"] = json!(""))),
            ("aud", Box::new(|c| c["aud"] = json!("someone-else"))),
            (
                "aud",
                Box::new(|c| {
                    c.as_object_mut().unwrap().remove("aud");
                }),
            ),
            ("aud", Box::new(|c| c["aud"] = json!([CLIENT, 5]))),
            ("aud", Box::new(|c| c["aud"] = json!([]))),
            ("exp", Box::new(|c| c["exp"] = json!(i64::MIN))),
            ("iat", Box::new(|c| c["iat"] = json!(i64::MAX))),
            ("nbf", Box::new(|c| c["nbf"] = json!(i64::MAX))),
            ("azp", Box::new(|c| c["aud"] = json!([CLIENT, "other"]))),
            ("azp", Box::new(|c| c["azp"] = json!("other"))),
            ("exp", Box::new(|c| c["exp"] = json!(NOW - LEEWAY_SECS - 1))),
            (
                "exp",
                Box::new(|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
            ),
            ("iat", Box::new(|c| c["iat"] = json!(NOW + LEEWAY_SECS + 1))),
            ("nbf", Box::new(|c| c["nbf"] = json!(NOW + LEEWAY_SECS + 1))),
            ("nonce", Box::new(|c| c["nonce"] = json!("replayed"))),
            (
                "nonce",
                Box::new(|c| {
                    c.as_object_mut().unwrap().remove("nonce");
                }),
            ),
        ];
        for (name, mutate) in cases {
            let mut c = claims();
            mutate(&mut c);
            let token = s.sign(&json!({"alg": "ES256", "kid": "ec1"}), &c);
            match validate(&token, &s.jwks(), &expected()) {
                Err(IdTokenError::Claim { claim, .. }) => assert_eq!(claim, name, "{c}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        let mut c = claims();
        c["aud"] = json!([CLIENT, "other"]);
        c["azp"] = json!(CLIENT);
        assert!(validate(&s.sign(&json!({"alg": "ES256"}), &c), &s.jwks(), &expected()).is_ok());
    }

    #[test]
    fn a_sign_in_without_a_nonce_accepts_no_token() {
        let s = signer();
        let mut c = claims();
        c["nonce"] = json!("");
        let token = s.sign(&json!({"alg": "ES256"}), &c);
        let none = Expected { nonce: "", ..expected() };
        assert!(matches!(validate(&token, &s.jwks(), &none), Err(IdTokenError::Claim { claim: "nonce", .. })));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let s = signer();
        for junk in ["", ".", "..", "a.b.c", "a.b.c.d", "e30.e30.", &"x".repeat(MAX_TOKEN_BYTES + 1)] {
            assert!(validate(junk, &s.jwks(), &expected()).is_err(), "{junk:.20}");
        }
        let crit = s.sign(&json!({"alg": "ES256", "crit": ["exp"]}), &claims());
        assert!(matches!(validate(&crit, &s.jwks(), &expected()), Err(IdTokenError::Malformed(_))));
    }

    #[test]
    fn rsa_pkcs1_and_pss_tokens_verify_against_the_modulus_and_exponent() {
        use ring::signature::{RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaKeyPair};
        // A throwaway key made for this test with `openssl genpkey -algorithm RSA -outform DER` (PKCS#1); it signs nothing else.
        let pair = RsaKeyPair::from_der(include_bytes!("testdata/test-only-rsa2048.der")).unwrap();
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
        let jwks: Jwks = serde_json::from_value(json!({ "keys": [{ "kty": "RSA", "kid": "r1",
            "n": URL_SAFE_NO_PAD.encode(&public.n),
            "e": URL_SAFE_NO_PAD.encode(&public.e) }]}))
        .unwrap();
        for (alg, padding) in
            [("RS256", &RSA_PKCS1_SHA256 as &dyn ring::signature::RsaEncoding), ("PS256", &RSA_PSS_SHA256)]
        {
            let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json!({"alg": alg, "kid": "r1"})).unwrap());
            let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap());
            let input = format!("{h}.{p}");
            let mut sig = vec![0; pair.public().modulus_len()];
            pair.sign(padding, &SystemRandom::new(), input.as_bytes(), &mut sig).unwrap();
            let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig));
            assert!(validate(&token, &jwks, &expected()).is_ok(), "{alg}");
            // The same signature under the other padding's name fails.
            let other = if alg == "RS256" { "PS256" } else { "RS256" };
            let h2 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json!({"alg": other, "kid": "r1"})).unwrap());
            let swapped = format!("{h2}.{p}.{}", URL_SAFE_NO_PAD.encode(&sig));
            assert_eq!(validate(&swapped, &jwks, &expected()), Err(IdTokenError::Signature), "{alg} as {other}");
        }
    }

    proptest::proptest! {
        #[test]
        fn validate_never_panics(token in "[A-Za-z0-9_.-]{0,300}") {
            let _ = validate(&token, &Jwks { keys: Vec::new() }, &expected());
        }
    }
}
