//! Everything pricing needs to know besides the reports: parties and rule histories.

use rustc_hash::FxHashMap;

use crate::ids::{ClientId, ProviderId};
use crate::party::{ClientProfile, ProviderProfile, Versions};
use crate::rules::{ClientRules, ProviderRules, RuleHistory, RuleVersion};

#[derive(Clone, Debug, Default)]
pub struct Catalog {
    providers: FxHashMap<ProviderId, Versions<ProviderProfile>>,
    clients: FxHashMap<ClientId, Versions<ClientProfile>>,
    provider_rules: RuleHistory<ProviderRules>,
    client_rules: FxHashMap<ClientId, RuleHistory<ClientRules>>,
}

impl Catalog {
    pub fn add_provider(&mut self, profile: ProviderProfile) {
        self.providers.entry(profile.provider_id.clone()).or_default().push(profile);
    }

    pub fn add_client(&mut self, profile: ClientProfile) {
        self.clients.entry(profile.client_id.clone()).or_default().push(profile);
    }

    pub fn add_provider_rules(&mut self, version: RuleVersion<ProviderRules>) {
        self.provider_rules.push(version);
    }

    /// Adds a version of a client's rules, filed under the client the document names.
    pub fn add_client_rules(&mut self, version: RuleVersion<ClientRules>) {
        self.client_rules.entry(version.rules.client_id.clone()).or_default().push(version);
    }

    pub fn provider(&self, id: &ProviderId) -> Option<&Versions<ProviderProfile>> {
        self.providers.get(id)
    }

    pub fn client(&self, id: &ClientId) -> Option<&Versions<ClientProfile>> {
        self.clients.get(id)
    }

    pub fn provider_rules(&self) -> &RuleHistory<ProviderRules> {
        &self.provider_rules
    }

    pub fn client_rules(&self, id: &ClientId) -> Option<&RuleHistory<ClientRules>> {
        self.client_rules.get(id)
    }

    /// Every provider's versions, in id order.
    pub fn providers(&self) -> impl Iterator<Item = &Versions<ProviderProfile>> {
        let mut all: Vec<_> = self.providers.iter().collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all.into_iter().map(|(_, v)| v)
    }

    /// Every client's versions, in id order.
    pub fn clients(&self) -> impl Iterator<Item = &Versions<ClientProfile>> {
        let mut all: Vec<_> = self.clients.iter().collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all.into_iter().map(|(_, v)| v)
    }

    /// Clients with rules, in id order.
    pub fn clients_with_rules(&self) -> Vec<&ClientId> {
        let mut ids: Vec<&ClientId> = self.client_rules.keys().collect();
        ids.sort();
        ids
    }
}
