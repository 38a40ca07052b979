//! Recovery v2 (`feature_flags.choose_recovery_address`, behaviour.md §8), code method: the user
//! names an address (e-mail or phone); an account with several recovery addresses shows them
//! masked to choose from, a choice other than the typed address is confirmed by typing it in
//! full, and the code goes by e-mail or SMS. An address no account uses looks exactly like a
//! known one. The code itself is redeemed as in v1.

use super::{Flow, State};
use crate::catalogue as text;
use crate::persistence::identity::{AddressKind, find_by_address};
use crate::persistence::{Store, StoreError};
use crate::selfservice::ui::{self, Input, group};
use base64::Engine;
use sha2::{Digest, Sha256};

/// The most addresses a choice shows.
const MAX_ADDRESSES: usize = 10;

/// An address as the choice screen shows it: e-mail `ab****@domain`, anything else the first
/// three and the last two characters around `****` (short values stay as they are).
pub fn mask_address(address: &str) -> String {
    if let Some((local, domain)) = address.split_once('@') {
        if local.chars().count() < 2 {
            return address.to_string();
        }
        let head: String = local.chars().take(2).collect();
        return format!("{head}****@{domain}");
    }
    let chars: Vec<char> = address.chars().collect();
    if chars.len() < 6 {
        return address.to_string();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}****{tail}")
}

/// The value a choice button carries for `address`: standard base64 of its SHA-256.
pub fn address_hash(address: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(address.as_bytes()))
}

/// The channel an address is reached by.
pub fn channel_of(address: &str) -> &'static str {
    if address.contains('@') { "email" } else { "sms" }
}

/// How an address is stored for its channel: e-mail lower-cased, phone numbers in E.164.
pub fn stored_form(address: &str) -> String {
    let trimmed = address.trim();
    match channel_of(trimmed) {
        "email" => trimmed.to_lowercase(),
        _ => crate::schema::normalise("sms", trimmed).unwrap_or_else(|_| trimmed.to_lowercase()),
    }
}

/// What a v2 submit asks for, by the flow's state and the submit's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `screen=previous`: one screen back.
    Back,
    /// An address was typed.
    Address,
    /// One of the masked addresses was chosen.
    Choose,
    /// The chosen address typed in full (or a resend): send the code.
    Send,
    /// A code to redeem.
    Redeem,
    /// The flow succeeded already: start over.
    RetrySucceeded,
}

/// v2's state machine.
pub fn decide(state: State, back: bool, code_given: bool) -> Step {
    match state {
        State::PassedChallenge => Step::RetrySucceeded,
        _ if back => Step::Back,
        State::RecoveryAwaitingAddressChoice => Step::Choose,
        State::RecoveryConfirmingAddress => Step::Send,
        State::RecoveryAwaitingCode if code_given => Step::Redeem,
        State::RecoveryAwaitingCode => Step::Send,
        _ => Step::Address,
    }
}

fn reset(flow: &mut Flow, state: State) {
    flow.state = state;
    flow.active = Some("code".into());
    flow.ui.nodes.clear();
    flow.ui.messages.clear();
    flow.ui.nodes.push(ui::csrf_node());
}

fn hidden(name: &str, value: &str) -> ui::Node {
    Input::new(group::CODE, name, "hidden").value(value).node()
}

fn continue_button() -> ui::Node {
    Input::new(group::CODE, "method", "submit").value("code").label(text::label_continue()).node()
}

fn back_button() -> ui::Node {
    Input::new(group::CODE, "screen", "submit").value("previous").label(text::recovery_back()).node()
}

/// The first screen: the address.
pub fn initial_ui(flow: &mut Flow) {
    reset(flow, State::RecoveryAwaitingAddress);
    flow.data.choose_address = true;
    flow.ui.nodes.push(
        Input::new(group::CODE, "recovery_address", "text").required().label(text::label_recovery_address()).node(),
    );
    flow.ui.nodes.push(continue_button());
}

/// The choice: one button per address, masked.
pub fn choice_ui(flow: &mut Flow, addresses: &[String], typed: &str) {
    reset(flow, State::RecoveryAwaitingAddressChoice);
    flow.ui.messages.push(text::recovery_choose_address());
    for a in addresses {
        flow.ui.nodes.push(
            Input::new(group::CODE, "recovery_select_address", "submit")
                .value(address_hash(a))
                .label(text::label_plain(&mask_address(a)))
                .node(),
        );
    }
    flow.ui.nodes.push(hidden("method", "code"));
    flow.ui.nodes.push(hidden("recovery_address", typed));
}

/// The chosen address is typed in full.
pub fn confirm_ui(flow: &mut Flow, chosen: &str, typed: &str) {
    reset(flow, State::RecoveryConfirmingAddress);
    flow.ui.messages.push(text::recovery_full_address());
    let (kind, label) =
        if chosen.contains('@') { ("email", text::label_email()) } else { ("tel", text::label_phone()) };
    flow.ui
        .nodes
        .push(Input::new(group::CODE, "recovery_confirm_address", kind).value("").required().label(label).node());
    flow.ui.nodes.push(hidden("recovery_address", typed));
    flow.ui.nodes.push(continue_button());
    flow.ui.nodes.push(hidden("method", "code"));
    flow.ui.nodes.push(back_button());
}

/// After sending: the code, resend (the address again), back.
pub fn code_ui(flow: &mut Flow, address: &str, typed: &str) {
    reset(flow, State::RecoveryAwaitingCode);
    flow.ui.messages.push(text::recovery_code_sent_to(&mask_address(address)));
    flow.ui.nodes.push(
        Input::new(group::CODE, "code", "text")
            .required()
            .pattern("[0-9]+")
            .max_length(6)
            .label(text::label_recovery_code())
            .node(),
    );
    flow.ui.nodes.push(continue_button());
    flow.ui.nodes.push(hidden("method", "code"));
    flow.ui.nodes.push(
        Input::new(group::CODE, "recovery_confirm_address", "submit").value(address).label(text::label_resend()).node(),
    );
    flow.ui.nodes.push(hidden("recovery_address", typed));
    flow.ui.nodes.push(back_button());
}

/// The recovery addresses of the account that has `typed` as one (sorted), or `None`.
pub async fn addresses_of(store: &Store, typed: &str) -> Result<Option<Vec<String>>, StoreError> {
    let value = stored_form(typed);
    let mut pooled = store.get().await?;
    let mut found = find_by_address(&mut pooled.conn(), AddressKind::Recovery, channel_of(&value), &value).await?;
    if found.is_none() && channel_of(&value) == "sms" {
        // A value without `@` may still be stored as e-mail (a username-like address).
        found =
            find_by_address(&mut pooled.conn(), AddressKind::Recovery, "email", &typed.trim().to_lowercase()).await?;
    }
    Ok(found.map(|identity| {
        let mut list: Vec<String> = identity.recovery_addresses.iter().map(|a| a.value.clone()).collect();
        list.sort();
        list.dedup();
        list.truncate(MAX_ADDRESSES);
        list
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_masked_as_kratos_masks_them() {
        assert_eq!(mask_address("fo@bar"), "fo****@bar");
        assert_eq!(mask_address("f@bar"), "f@bar");
        assert_eq!(mask_address("asdf@"), "as****@");
        assert_eq!(mask_address("test@ory.sh"), "te****@ory.sh");
        assert_eq!(mask_address("+491705550167"), "+49****67");
        assert_eq!(mask_address("foobar"), "foo****ar");
        assert_eq!(mask_address("..."), "...");
    }

    #[test]
    fn choices_carry_the_base64_sha256_of_the_address() {
        // printf '%s' a@b.c | sha256sum | xxd -r -p | base64
        assert_eq!(address_hash(""), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        assert_ne!(address_hash("a@example.org"), address_hash("b@example.org"));
    }

    #[test]
    fn the_state_machine() {
        use State::*;
        assert_eq!(decide(RecoveryAwaitingAddress, false, false), Step::Address);
        assert_eq!(decide(RecoveryAwaitingAddressChoice, false, false), Step::Choose);
        assert_eq!(decide(RecoveryConfirmingAddress, false, false), Step::Send);
        assert_eq!(decide(RecoveryAwaitingCode, false, true), Step::Redeem);
        assert_eq!(decide(RecoveryAwaitingCode, false, false), Step::Send, "no code: resend");
        assert_eq!(decide(RecoveryAwaitingCode, true, true), Step::Back);
        assert_eq!(decide(PassedChallenge, true, true), Step::RetrySucceeded);
    }
}
