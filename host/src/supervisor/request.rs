//! The bodies of the deploy requests, one type each for the server that reads
//! them and the client that sends them: `PUT /processors/{name}` and
//! `POST /processors/{name}/swap`. Each is one flat JSON object: its own
//! fields beside the keys of a [`ProcessorSpec`] (or some of them), unknown
//! keys refused.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::processor::spec::Fields;
use crate::processor::{ProcessorSpec, SpecChanges};

/// `PUT /processors/{name}`: `{"component", …every setting of the spec}`,
/// missing settings at their defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct NewProcessor {
    /// The component's id, as `POST /components` returned it.
    pub component: String,
    pub spec: ProcessorSpec,
}

impl Serialize for NewProcessor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let head = serde_json::json!({"component": self.component});
        Fields::merge(head, &self.spec).serialize(s)
    }
}

impl<'de> Deserialize<'de> for NewProcessor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Fields::read(d, |mut fields| {
            Ok(NewProcessor {
                component: fields.take("component")?,
                spec: fields.into_spec()?,
            })
        })
    }
}

/// `POST /processors/{name}/swap`: `{"component", "rewind_to"?, …settings to
/// change}`. The settings given replace the recorded ones, the others stay
/// (the label excepted: see [`crate::supervisor::Deployment::changed`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Swap {
    pub component: String,
    /// A position (`"earliest"`, `"latest"`, an offset, `"ts:MILLIS"`) to
    /// move the group to as the new version takes over.
    pub rewind_to: Option<Value>,
    pub changes: SpecChanges,
}

impl Serialize for Swap {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut head = serde_json::json!({"component": self.component});
        if let Some(to) = &self.rewind_to {
            head["rewind_to"] = to.clone();
        }
        Fields::merge(head, &self.changes).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Swap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Fields::read(d, |mut fields| {
            Ok(Swap {
                component: fields.take("component")?,
                rewind_to: fields.take_or_default("rewind_to")?,
                changes: fields.into_changes()?,
            })
        })
    }
}
