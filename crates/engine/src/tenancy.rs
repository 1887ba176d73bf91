//! The tenancy tree's use cases: partner, organizations, sites, device groups and devices.

use crate::{Engine, EngineError, Result, require, require_partner_wide};
use ringfence_model::*;
use ringfence_proto as proto;
use ringfence_store::*;

/// An identifier from a URL path: a malformed one simply does not exist.
pub(crate) fn path_id<T>(parse: fn(&str) -> Result<T, ValueError>, s: &str, what: &'static str) -> Result<T> {
    parse(s).map_err(|_| EngineError::NotFound(what))
}

/// An identifier from a request body: a malformed one is a bad request naming the field.
pub(crate) fn body_id<T>(parse: fn(&str) -> Result<T, ValueError>, s: &str, field: &str) -> Result<T> {
    parse(s.trim()).map_err(|e| EngineError::Invalid(e.for_field(field)))
}

fn opt_name(field: &str, s: &Option<String>) -> Result<Option<Name>> {
    Ok(s.as_deref().map(|s| Name::parse(field, s)).transpose()?)
}

fn opt_notes(field: &str, s: &Option<String>) -> Result<Option<String>> {
    Ok(s.as_deref().map(|s| parse_notes(field, s)).transpose()?)
}

fn group_ids(ids: &[String]) -> Result<Vec<DeviceGroupId>> {
    if ids.len() > 100 {
        return Err(ValueError::new("group_ids", "lists more than 100 groups").into());
    }
    ids.iter().map(|g| body_id(DeviceGroupId::parse, g, "group_ids")).collect()
}

/// An operating system description: free text like a name, or empty when unknown.
fn operating_system(s: &str) -> Result<String> {
    if s.trim().is_empty() { Ok(String::new()) } else { Ok(Name::parse("os", s)?.into_string()) }
}

/// Largest page of the device list.
pub const MAX_PAGE: i64 = 500;

impl Engine {
    pub async fn partner(&self, p: &Principal) -> Result<Partner> {
        require(p, Permission::Read, "view the partner")?;
        Ok(self.store().get_partner(&p.scope()).await?)
    }

    pub async fn update_partner(&self, p: &Principal, req: &proto::UpdatePartner) -> Result<Partner> {
        require(p, Permission::ManagePartner, "change the partner's settings")?;
        require_partner_wide(p, "change the partner's settings")?;
        let name = Name::parse("name", &req.name)?;
        Ok(self.store().rename_partner(&self.audit(p), &p.scope(), &name).await?)
    }

    pub async fn organizations(&self, p: &Principal) -> Result<Vec<Organization>> {
        require(p, Permission::Read, "view organizations")?;
        Ok(self.store().list_organizations(&p.scope()).await?)
    }

    pub async fn organization(&self, p: &Principal, id: &str) -> Result<Organization> {
        require(p, Permission::Read, "view organizations")?;
        let id = path_id(OrganizationId::parse, id, "organization")?;
        Ok(self.store().get_organization(&p.scope(), &id).await?)
    }

    pub async fn create_organization(
        &self,
        p: &Principal,
        req: &proto::CreateOrganization,
    ) -> Result<Organization> {
        require(p, Permission::WriteTenancy, "create organizations")?;
        require_partner_wide(p, "create organizations")?;
        let new = NewOrganization {
            name: Name::parse("name", &req.name)?,
            notes: parse_notes("notes", &req.notes)?,
        };
        Ok(self.store().create_organization(&self.audit(p), &p.scope(), &new).await?)
    }

    pub async fn update_organization(
        &self,
        p: &Principal,
        id: &str,
        req: &proto::UpdateOrganization,
    ) -> Result<Organization> {
        require(p, Permission::WriteTenancy, "change organizations")?;
        let id = path_id(OrganizationId::parse, id, "organization")?;
        let patch =
            OrganizationPatch { name: opt_name("name", &req.name)?, notes: opt_notes("notes", &req.notes)? };
        Ok(self.store().update_organization(&self.audit(p), &p.scope(), &id, &patch).await?)
    }

    pub async fn delete_organization(&self, p: &Principal, id: &str) -> Result<()> {
        require(p, Permission::WriteTenancy, "delete organizations")?;
        let id = path_id(OrganizationId::parse, id, "organization")?;
        // Look first, so that a caller limited to another organization gets "not found".
        self.store().get_organization(&p.scope(), &id).await?;
        // Offboarding a client removes all of its data: partner admins only.
        require(
            p,
            Permission::ManagePartner,
            "delete organizations (offboarding a client is for partner admins)",
        )?;
        require_partner_wide(p, "delete organizations")?;
        Ok(self.store().delete_organization(&self.audit(p), &p.scope(), &id).await?)
    }

    pub async fn sites(&self, p: &Principal, organization: Option<&str>) -> Result<Vec<Site>> {
        require(p, Permission::Read, "view sites")?;
        let org = organization.map(|o| body_id(OrganizationId::parse, o, "organization_id")).transpose()?;
        Ok(self.store().list_sites(&p.scope(), org.as_ref()).await?)
    }

    pub async fn site(&self, p: &Principal, id: &str) -> Result<Site> {
        require(p, Permission::Read, "view sites")?;
        let id = path_id(SiteId::parse, id, "site")?;
        Ok(self.store().get_site(&p.scope(), &id).await?)
    }

    pub async fn create_site(&self, p: &Principal, req: &proto::CreateSite) -> Result<Site> {
        require(p, Permission::WriteTenancy, "create sites")?;
        let new = NewSite {
            organization_id: body_id(OrganizationId::parse, &req.organization_id, "organization_id")?,
            name: Name::parse("name", &req.name)?,
            time_zone: TimeZoneName::parse("time_zone", &req.time_zone)?,
            address: parse_notes("address", &req.address)?,
        };
        match self.store().create_site(&self.audit(p), &p.scope(), &new).await {
            Err(StoreError::NotFound(_)) => Err(ValueError::new(
                "organization_id",
                format!("organization {} not found", new.organization_id),
            )
            .into()),
            other => Ok(other?),
        }
    }

    pub async fn update_site(&self, p: &Principal, id: &str, req: &proto::UpdateSite) -> Result<Site> {
        require(p, Permission::WriteTenancy, "change sites")?;
        let id = path_id(SiteId::parse, id, "site")?;
        let patch = SitePatch {
            name: opt_name("name", &req.name)?,
            time_zone: req.time_zone.as_deref().map(|z| TimeZoneName::parse("time_zone", z)).transpose()?,
            address: opt_notes("address", &req.address)?,
        };
        Ok(self.store().update_site(&self.audit(p), &p.scope(), &id, &patch).await?)
    }

    pub async fn delete_site(&self, p: &Principal, id: &str) -> Result<()> {
        require(p, Permission::WriteTenancy, "delete sites")?;
        let id = path_id(SiteId::parse, id, "site")?;
        Ok(self.store().delete_site(&self.audit(p), &p.scope(), &id).await?)
    }

    pub async fn groups(&self, p: &Principal, organization: Option<&str>) -> Result<Vec<DeviceGroup>> {
        require(p, Permission::Read, "view device groups")?;
        let org = organization.map(|o| body_id(OrganizationId::parse, o, "organization_id")).transpose()?;
        Ok(self.store().list_groups(&p.scope(), org.as_ref()).await?)
    }

    pub async fn group(&self, p: &Principal, id: &str) -> Result<DeviceGroup> {
        require(p, Permission::Read, "view device groups")?;
        let id = path_id(DeviceGroupId::parse, id, "device group")?;
        Ok(self.store().get_group(&p.scope(), &id).await?)
    }

    pub async fn create_group(&self, p: &Principal, req: &proto::CreateDeviceGroup) -> Result<DeviceGroup> {
        require(p, Permission::WriteTenancy, "create device groups")?;
        let new = NewGroup {
            organization_id: body_id(OrganizationId::parse, &req.organization_id, "organization_id")?,
            name: Name::parse("name", &req.name)?,
            description: parse_notes("description", &req.description)?,
        };
        match self.store().create_group(&self.audit(p), &p.scope(), &new).await {
            Err(StoreError::NotFound(_)) => Err(ValueError::new(
                "organization_id",
                format!("organization {} not found", new.organization_id),
            )
            .into()),
            other => Ok(other?),
        }
    }

    pub async fn update_group(
        &self,
        p: &Principal,
        id: &str,
        req: &proto::UpdateDeviceGroup,
    ) -> Result<DeviceGroup> {
        require(p, Permission::WriteTenancy, "change device groups")?;
        let id = path_id(DeviceGroupId::parse, id, "device group")?;
        let patch = GroupPatch {
            name: opt_name("name", &req.name)?,
            description: opt_notes("description", &req.description)?,
        };
        Ok(self.store().update_group(&self.audit(p), &p.scope(), &id, &patch).await?)
    }

    pub async fn delete_group(&self, p: &Principal, id: &str) -> Result<()> {
        require(p, Permission::WriteTenancy, "delete device groups")?;
        let id = path_id(DeviceGroupId::parse, id, "device group")?;
        Ok(self.store().delete_group(&self.audit(p), &p.scope(), &id).await?)
    }

    pub async fn devices(&self, p: &Principal, q: &proto::DeviceListQuery) -> Result<Page<Device>> {
        require(p, Permission::Read, "view devices")?;
        let query = device_query(q)?;
        Ok(self.store().list_devices(&p.scope(), &query).await?)
    }

    /// The device list as the dashboard shows it: client and site by name, whether each
    /// agent checks in, and open findings; `presence` (online, offline, no_agent) and the
    /// sort column (hostname, client, site, os, last_seen, open, kev) are checked by the store.
    pub async fn device_rows(&self, p: &Principal, view: &DeviceRowsView<'_>) -> Result<Page<DeviceRow>> {
        require(p, Permission::Read, "view devices")?;
        let offline_after = self.offline_after();
        let query = DeviceRowQuery {
            devices: device_query(view.query)?,
            presence: view.presence.to_owned(),
            seen_since: Some(self.now() - offline_after),
            sort: view.sort.to_owned(),
            descending: view.descending,
        };
        Ok(self.store().list_device_rows(&p.scope(), &query).await?)
    }

    pub async fn device(&self, p: &Principal, id: &str) -> Result<Device> {
        require(p, Permission::Read, "view devices")?;
        let id = path_id(DeviceId::parse, id, "device")?;
        Ok(self.store().get_device(&p.scope(), &id).await?)
    }

    pub async fn create_device(&self, p: &Principal, req: &proto::CreateDevice) -> Result<Device> {
        require(p, Permission::WriteTenancy, "create devices")?;
        let new = NewDevice {
            site_id: body_id(SiteId::parse, &req.site_id, "site_id")?,
            hostname: parse_hostname("hostname", &req.hostname)?,
            role: DeviceRole::parse(&req.role)?,
            os: operating_system(&req.os)?,
            internet_facing: req.internet_facing,
            holds_sensitive_data: req.holds_sensitive_data,
            criticality: req
                .criticality
                .as_deref()
                .map(Criticality::parse)
                .transpose()?
                .unwrap_or(Criticality::Medium),
            time_zone: req.time_zone.as_deref().map(|z| TimeZoneName::parse("time_zone", z)).transpose()?,
            group_ids: group_ids(&req.group_ids)?,
        };
        Ok(self.store().create_device(&self.audit(p), &p.scope(), &new).await?)
    }

    pub async fn update_device(&self, p: &Principal, id: &str, req: &proto::UpdateDevice) -> Result<Device> {
        require(p, Permission::WriteTenancy, "change devices")?;
        let id = path_id(DeviceId::parse, id, "device")?;
        let patch = DevicePatch {
            site_id: req.site_id.as_deref().map(|s| body_id(SiteId::parse, s, "site_id")).transpose()?,
            hostname: req.hostname.as_deref().map(|h| parse_hostname("hostname", h)).transpose()?,
            role: req.role.as_deref().map(DeviceRole::parse).transpose()?,
            os: req.os.as_deref().map(operating_system).transpose()?,
            internet_facing: req.internet_facing,
            holds_sensitive_data: req.holds_sensitive_data,
            criticality: req.criticality.as_deref().map(Criticality::parse).transpose()?,
            time_zone: match &req.time_zone {
                None => None,
                Some(None) => Some(None),
                Some(Some(z)) => Some(Some(TimeZoneName::parse("time_zone", z)?)),
            },
            group_ids: req.group_ids.as_deref().map(group_ids).transpose()?,
        };
        Ok(self.store().update_device(&self.audit(p), &p.scope(), &id, &patch).await?)
    }

    pub async fn delete_device(&self, p: &Principal, id: &str) -> Result<()> {
        require(p, Permission::WriteTenancy, "delete devices")?;
        let id = path_id(DeviceId::parse, id, "device")?;
        Ok(self.store().delete_device(&self.audit(p), &p.scope(), &id).await?)
    }
}

/// What the device list shows: the filters of `query`, a presence filter and a sort.
pub struct DeviceRowsView<'a> {
    pub query: &'a proto::DeviceListQuery,
    pub presence: &'a str,
    pub sort: &'a str,
    pub descending: bool,
}

/// A device list request checked into the store's query.
fn device_query(q: &proto::DeviceListQuery) -> Result<DeviceQuery> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ValueError::new("limit", format!("must be between 1 and {MAX_PAGE}")).into());
    }
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ValueError::new("offset", "must not be negative").into());
    }
    if q.search.as_ref().is_some_and(|s| s.chars().count() > 253) {
        return Err(ValueError::new("search", "is longer than any host name (253)").into());
    }
    Ok(DeviceQuery {
        organization_id: q
            .organization_id
            .as_deref()
            .map(|o| body_id(OrganizationId::parse, o, "organization_id"))
            .transpose()?,
        site_id: q.site_id.as_deref().map(|s| body_id(SiteId::parse, s, "site_id")).transpose()?,
        group_id: q.group_id.as_deref().map(|g| body_id(DeviceGroupId::parse, g, "group_id")).transpose()?,
        search: q.search.clone(),
        limit,
        offset,
    })
}
