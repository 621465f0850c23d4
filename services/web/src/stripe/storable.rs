//! Checks that a signed event's strings can be stored in PostgreSQL, which
//! rejects a NUL character in `text` and limits the size of an index entry.
//! A signed body can hold such strings, and every retry would fail the same
//! way, so the event is acknowledged and recorded as malformed instead.

use serde_json::Value;

use super::apply::Malformed;

/// Maximum length in bytes of an event id or type that is stored. Stripe's
/// event ids and types are well under 100 bytes.
pub const MAX_STORED_ID_BYTES: usize = 255;

/// Number of characters of an unstorable id that is logged.
const LOGGED_ID_CHARS: usize = 64;

/// The reason a signed event cannot be stored as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unstorable {
    /// The event id cannot be stored, so the event is only logged and
    /// counted. `logged_id` is a truncated, escaped form of the id.
    Id {
        logged_id: String,
        reason: &'static str,
    },
    /// Another string cannot be stored, so the event is recorded as
    /// malformed under its id.
    Field(Malformed),
}

/// Returns why the event cannot be stored, or `None` when it can. The id
/// is checked first, then the type, then every other string and key.
pub fn check(envelope: &Value) -> Option<Unstorable> {
    if let Some(id) = envelope["id"].as_str()
        && let Some(reason) = id_problem(id)
    {
        return Some(Unstorable::Id {
            logged_id: logged_form(id),
            reason,
        });
    }
    if let Some(event_type) = envelope["type"].as_str()
        && let Some(reason) = id_problem(event_type)
    {
        return Some(Unstorable::Field(Malformed {
            field: "type".to_owned(),
            reason: reason.to_owned(),
        }));
    }
    find_nul(envelope, "").map(|field| {
        Unstorable::Field(Malformed {
            field,
            reason: "contains a NUL character (\\u0000), which cannot be stored".to_owned(),
        })
    })
}

/// Returns whether `text` can be stored as an event id or type.
pub fn is_storable_id(text: &str) -> bool {
    id_problem(text).is_none()
}

fn id_problem(text: &str) -> Option<&'static str> {
    if text.contains('\0') {
        Some("contains a NUL character (\\u0000), which cannot be stored")
    } else if text.len() > MAX_STORED_ID_BYTES {
        Some("is longer than 255 bytes, which is not stored")
    } else {
        None
    }
}

/// Returns the first characters of `id` with control characters escaped,
/// and its length when it was cut.
fn logged_form(id: &str) -> String {
    let head: String = id.chars().take(LOGGED_ID_CHARS).collect();
    let escaped = head.escape_debug().to_string();
    if head.len() < id.len() {
        format!("{escaped}… ({} bytes)", id.len())
    } else {
        escaped
    }
}

/// Returns the path of the first string or key that contains a NUL
/// character. A key is named in escaped form, so the path can be stored.
fn find_nul(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::String(text) if text.contains('\0') => Some(path_or_body(path)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| find_nul(item, &format!("{path}[{index}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let escaped = key.escape_debug().to_string();
            let child = if path.is_empty() {
                escaped
            } else {
                format!("{path}.{escaped}")
            };
            if key.contains('\0') {
                Some(child)
            } else {
                find_nul(item, &child)
            }
        }),
        _ => None,
    }
}

fn path_or_body(path: &str) -> String {
    if path.is_empty() {
        "(the body)".to_owned()
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn long_id_is_logged_truncated() {
        let id = "e".repeat(20_000);
        let Some(Unstorable::Id { logged_id, reason }) = check(&json!({ "id": id })) else {
            panic!("a 20,000-byte id must be unstorable");
        };
        assert!(logged_id.ends_with("… (20000 bytes)"), "{logged_id}");
        assert!(logged_id.len() < 100, "{logged_id}");
        assert!(reason.contains("255 bytes"), "{reason}");
    }

    #[test]
    fn nul_in_nested_string_names_path() {
        let event = json!({"id": "evt_1", "type": "charge.refunded",
                           "data": {"object": {"items": ["ok", "x\u{0}y"]}}});
        let found = check(&event);
        let Some(Unstorable::Field(malformed)) = found else {
            panic!("expected a field problem, got {found:?}");
        };
        assert_eq!(malformed.field, "data.object.items[1]");
    }

    #[test]
    fn clean_event_is_storable() {
        let event = json!({"id": "evt_1", "type": "charge.refunded", "data": {"object": {}}});
        assert_eq!(check(&event), None);
    }
}
