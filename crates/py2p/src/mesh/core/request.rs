//! Whispers to nodes we have no connection to: py2p's request/response for a route.

use std::time::Instant;

use log::{debug, warn};
use py2p_net::{ConnId, Net};
use py2p_wire::{base58, Flag};
use sha2::{Digest, Sha384};

use super::effect::Effect;
use super::effect::Purpose;
use super::path::Path;
use super::state::{MeshCore, PendingRequest};
use crate::mesh::peer::{self};
use crate::mesh::resolver::Then;

impl MeshCore {
    /// A whisper to `target`: directly when routed, else through request/response.
    pub(crate) fn whisper(&mut self, net: &mut dyn Net, target: String, packets: Vec<Vec<u8>>) {
        self.whisper_with(net, target, Flag::WHISPER.0, packets);
    }

    /// A whisper with the user's `sub_flag`.
    pub(crate) fn whisper_with(
        &mut self,
        net: &mut dyn Net,
        target: String,
        sub_flag: u8,
        packets: Vec<Vec<u8>>,
    ) {
        let mut payload = Vec::with_capacity(packets.len() + 1);
        payload.push(vec![sub_flag]);
        payload.extend(packets);
        if let Some(&conn) = self.routing.get(&target) {
            self.send_to(net, conn, Flag::WHISPER, payload);
            return;
        }
        // A dial to the target already under way takes the whisper along.
        if let Some(dial) = self
            .dials
            .values_mut()
            .find(|d| d.expected_id.as_deref() == Some(target.as_str()))
        {
            dial.deferred.push(payload);
            return;
        }
        // A request for this target just sent: the whisper waits with the others.
        let now_i = net.now();
        if let Some(pending) = self.requests.values_mut().find(|r| {
            r.target == target
                && now_i.duration_since(r.created) < std::time::Duration::from_secs(2)
        }) {
            pending.messages.push(payload);
            return;
        }
        // py2p hashes the target id and the time; peers only echo the request id, so ours also
        // hashes our own id and a counter: two requests (from two nodes, or one node twice in a
        // second) never share an id and are never dropped as one broadcast seen twice.
        let now = net.unix_time();
        self.request_counter += 1;
        let digest = Sha384::new()
            .chain_update(target.as_bytes())
            .chain_update(base58::U64Text::new(now).as_bytes())
            .chain_update(self.id.as_bytes())
            .chain_update(self.request_counter.to_be_bytes())
            .finalize();
        let request_id = base58::encode_be_bytes(&digest);
        if self.routing.is_empty() {
            warn!(
                "whisper to {target}: no peers to ask for a route; it waits {}s for one",
                self.config.request_timeout.as_secs()
            );
        } else {
            debug!("whisper to {target}: not connected, asking peers (request {request_id})");
        }
        self.requests.insert(
            request_id.clone(),
            PendingRequest {
                target: target.clone(),
                messages: vec![payload],
                created: net.now(),
            },
        );
        self.broadcast(
            net,
            vec![
                vec![Flag::REQUEST.0],
                request_id.into_bytes(),
                target.into_bytes(),
            ],
        );
    }

    pub(super) fn handle_request(
        &mut self,
        net: &mut dyn Net,
        conn: ConnId,
        payload: py2p_wire::Payload<'_>,
    ) {
        let packets: Vec<&[u8]> = payload.iter().collect();
        match packets.as_slice() {
            [_, star] if *star == b"*" => {
                self.hit(Path::RequestPeers);
                let list = self.peer_list(conn);
                self.send_to(
                    net,
                    conn,
                    Flag::WHISPER,
                    vec![vec![Flag::PEERS.0], list.into_bytes()],
                );
            }
            [_, request_id, target, ..] => {
                self.hit(Path::RequestRoute);
                let Ok(target) = std::str::from_utf8(target) else {
                    return;
                };
                let Some(addr) = self
                    .routing
                    .get(target)
                    .and_then(|c| self.peers.get(c))
                    .and_then(|p| p.addr.clone())
                else {
                    return;
                };
                let answer = serde_json::Value::Array(vec![
                    serde_json::Value::Array(vec![addr.0.into(), addr.1.into()]),
                    target.into(),
                ]);
                self.send_to(
                    net,
                    conn,
                    Flag::BROADCAST,
                    vec![
                        vec![Flag::RESPONSE.0],
                        request_id.to_vec(),
                        answer.to_string().into_bytes(),
                    ],
                );
            }
            _ => {}
        }
    }

    pub(super) fn handle_response(&mut self, net: &mut dyn Net, payload: py2p_wire::Payload<'_>) {
        self.hit(Path::Response);
        let (Some(request_id), Some(answer)) = (payload.get(1), payload.get(2)) else {
            return;
        };
        let Ok(request_id) = std::str::from_utf8(request_id) else {
            return;
        };
        let Some(pending) = self.requests.remove(request_id) else {
            return;
        };
        self.hit(Path::ResponseMatched);
        let parsed: Option<((String, u16), String)> =
            serde_json::from_slice::<serde_json::Value>(answer)
                .ok()
                .and_then(|v| {
                    let pair = v.as_array()?;
                    Some((
                        peer::parse_addr(pair.first()?)?,
                        pair.get(1)?.as_str()?.to_owned(),
                    ))
                });
        let Some(((host, port), id)) = parsed else {
            warn!("malformed response to request {request_id}");
            return;
        };
        if id != pending.target {
            warn!(
                "response to request {request_id} names {id}, not {}",
                pending.target
            );
            return;
        }
        if let Some(&conn) = self.routing.get(&id) {
            for payload in pending.messages {
                self.send_to(net, conn, Flag::WHISPER, payload);
            }
            return;
        }
        let then = Then {
            expected_id: Some(id),
            deferred: pending.messages,
        };
        self.dial_advertised(net, &host, port, then, Purpose::Response);
    }

    /// Drops the whispers that found no route within `request_timeout`.
    pub(super) fn expire_requests(&mut self, now: Instant) {
        let timeout = self.config.request_timeout;
        let effects = &mut self.effects;
        self.requests.retain(|rid, r| {
            let keep = now.duration_since(r.created) <= timeout;
            if !keep {
                let text = format!(
                    "no route to {} within {timeout:?} (request {rid}): {} whisper(s) dropped",
                    r.target,
                    r.messages.len()
                );
                warn!("{text}");
                effects.push_back(Effect::Error(text));
            }
            keep
        });
    }
}
