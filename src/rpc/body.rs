//! Request bodies: JSON mapped to the method's input message through its
//! descriptor (the proto3 JSON mapping, unknown fields refused). A JSON array
//! is a list of requests, sent round-robin; for a client-streaming or
//! bidirectional method, it is the messages of every stream, in order. Inside any JSON string,
//! `{{request_number}}` becomes the call's number in its workload (from 0);
//! integer fields accept quoted numbers, so `"turn": "{{request_number}}"`
//! varies a number too. A body without a template is encoded once.

use bytes::Bytes;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use serde_json::Value;

/// The placeholder replaced in JSON strings.
pub(crate) const REQUEST_NUMBER: &str = "{{request_number}}";

/// The requests of one workload, in the order they are sent.
#[derive(Debug, Clone)]
pub struct Bodies {
    desc: MessageDescriptor,
    items: Vec<Item>,
}

#[derive(Debug, Clone)]
enum Item {
    /// Encoded once, sent as is.
    Fixed(Bytes),
    /// Holds a template: filled in and encoded per call.
    Template(Value),
}

impl Bodies {
    /// Parses `json` (an object, or an array of them) against `desc`; every item is encoded once to check it.
    pub fn parse(desc: &MessageDescriptor, json: &str) -> Result<Bodies, String> {
        let value: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
        let (values, array) = match value {
            Value::Array(items) if items.is_empty() => return Err("an empty array sends nothing".into()),
            Value::Array(items) => (items, true),
            v => (vec![v], false),
        };
        let mut items = Vec::with_capacity(values.len());
        for (i, v) in values.into_iter().enumerate() {
            let templated = has_template(&v);
            let encoded = encode(desc, &fill(&v, 0)).map_err(|e| {
                let which = if array { format!("request {i}: ") } else { String::new() };
                format!("{which}does not match {}: {e}", desc.full_name())
            })?;
            items.push(if templated {
                Item::Template(v)
            } else {
                Item::Fixed(encoded)
            });
        }
        Ok(Bodies {
            desc: desc.clone(),
            items,
        })
    }

    /// The encoded body of call number `n`.
    pub fn get(&self, n: u64) -> Result<Bytes, String> {
        match &self.items[(n % self.items.len() as u64) as usize] {
            Item::Fixed(b) => Ok(b.clone()),
            Item::Template(v) => encode(&self.desc, &fill(v, n)),
        }
    }

    /// The messages of stream number `n` of a client-streaming or bidirectional
    /// method: every item, in order, templates filled with `n`.
    pub fn stream(&self, n: u64) -> Result<Vec<Bytes>, String> {
        self.items
            .iter()
            .map(|item| match item {
                Item::Fixed(b) => Ok(b.clone()),
                Item::Template(v) => encode(&self.desc, &fill(v, n)),
            })
            .collect()
    }

    /// How many distinct requests there are.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

fn encode(desc: &MessageDescriptor, v: &Value) -> Result<Bytes, String> {
    match DynamicMessage::deserialize(desc.clone(), v) {
        Ok(msg) => Ok(Bytes::from(msg.encode_to_vec())),
        Err(e) => Err(match culprit(desc, v) {
            Some(field) => format!("field `{field}`: {e}"),
            None => e.to_string(),
        }),
    }
}

/// The top-level field that fails on its own, to name it: the JSON mapping's errors do not.
fn culprit(desc: &MessageDescriptor, v: &Value) -> Option<String> {
    let Value::Object(fields) = v else { return None };
    fields.iter().find_map(|(k, x)| {
        let alone = Value::Object([(k.clone(), x.clone())].into_iter().collect());
        DynamicMessage::deserialize(desc.clone(), &alone)
            .is_err()
            .then(|| k.clone())
    })
}

fn has_template(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains(REQUEST_NUMBER),
        Value::Array(a) => a.iter().any(has_template),
        Value::Object(o) => o.values().any(has_template),
        _ => false,
    }
}

fn fill(v: &Value, n: u64) -> Value {
    match v {
        Value::String(s) if s.contains(REQUEST_NUMBER) => Value::String(s.replace(REQUEST_NUMBER, &n.to_string())),
        Value::Array(a) => Value::Array(a.iter().map(|x| fill(x, n)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), fill(x, n))).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask() -> MessageDescriptor {
        let pool = prost_reflect::DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET).unwrap();
        pool.get_message_by_name("fdsoak.demo.v1.AskRequest").unwrap()
    }

    fn decode(b: Bytes) -> crate::proto::demo::AskRequest {
        crate::proto::demo::AskRequest::decode(b).unwrap()
    }

    #[test]
    fn an_array_is_sent_round_robin_and_templates_fill_strings_and_numbers() {
        let b = Bodies::parse(
            &ask(),
            r#"[{"message": "hi"}, {"message": "q{{request_number}}", "turn": "{{request_number}}"}]"#,
        )
        .unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(decode(b.get(0).unwrap()).message, "hi");
        let third = decode(b.get(3).unwrap());
        assert_eq!((third.message.as_str(), third.turn), ("q3", 3));
        assert_eq!(decode(b.get(4).unwrap()).message, "hi");
    }

    #[test]
    fn a_body_that_does_not_match_the_message_is_refused_with_the_reason() {
        let e = Bodies::parse(&ask(), r#"{"mesage": "hi"}"#).unwrap_err();
        assert!(
            e.contains("does not match fdsoak.demo.v1.AskRequest") && e.contains("mesage"),
            "{e}"
        );
        let e = Bodies::parse(&ask(), r#"{"turn": "many"}"#).unwrap_err();
        assert!(e.contains("field `turn`: "), "{e}");
        let e = Bodies::parse(&ask(), r#"[{}, {"context": 3}]"#).unwrap_err();
        assert!(e.starts_with("request 1: "), "{e}");
        assert!(Bodies::parse(&ask(), "{").unwrap_err().starts_with("not JSON"));
        assert!(Bodies::parse(&ask(), "[]").is_err());
    }
}
