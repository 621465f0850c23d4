//! Projects, their portal link, stage, favourites and response history.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::TenantTx;
use crate::response::NewResponse;
use crate::secret::{self, Secret};
use crate::{DomainError, PhotoId, ProjectId, ResponseKind, Stage, validate};

/// Prefix of portal tokens, so a leaked one is recognisable in a scan.
const PORTAL_TOKEN_PREFIX: &str = "pp_";

/// A project as stored.
#[derive(Clone, Debug, Serialize)]
pub struct Project {
    pub id: ProjectId,
    pub title: String,
    pub client_name: String,
    pub client_email: String,
    pub shoot_date: NaiveDate,
    pub stage: Stage,
    #[serde(skip)]
    pub portal_token: Secret,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: ProjectId,
    title: String,
    client_name: String,
    client_email: String,
    shoot_date: NaiveDate,
    stage: String,
    portal_token: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<ProjectRow> for Project {
    type Error = DomainError;

    fn try_from(row: ProjectRow) -> Result<Self, Self::Error> {
        Ok(Project {
            id: row.id,
            title: row.title,
            client_name: row.client_name,
            client_email: row.client_email,
            shoot_date: row.shoot_date,
            stage: row.stage.parse()?,
            portal_token: Secret::new(row.portal_token),
            created_at: row.created_at,
        })
    }
}

macro_rules! project_columns {
    () => {
        "id, title, client_name, client_email, shoot_date, stage, portal_token, created_at"
    };
}

/// Validated input for a new project.
#[derive(Debug)]
pub struct NewProject {
    pub title: String,
    pub client_name: String,
    pub client_email: String,
    pub shoot_date: NaiveDate,
}

impl NewProject {
    /// Validates the fields of a new project.
    pub fn parse(
        title: &str,
        client_name: &str,
        client_email: &str,
        shoot_date: &str,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            title: validate::required_text("title", title, 200)?,
            client_name: validate::required_text("client_name", client_name, 200)?,
            client_email: validate::email("client_email", client_email)?,
            shoot_date: validate::date("shoot_date", shoot_date)?,
        })
    }
}

/// Creates a project at `Booked`, with its portal link.
pub async fn create(tx: &mut TenantTx, new: NewProject) -> Result<Project, DomainError> {
    let tenant = tx.tenant_id();
    let row: ProjectRow = sqlx::query_as(concat!("INSERT INTO projects (id, tenant_id, title, client_name, client_email, shoot_date, portal_token) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ", project_columns!()))
    .bind(ProjectId::new())
    .bind(tenant)
    .bind(&new.title)
    .bind(&new.client_name)
    .bind(&new.client_email)
    .bind(new.shoot_date)
    .bind(secret::random_token(PORTAL_TOKEN_PREFIX).expose())
    .fetch_one(tx.conn())
    .await?;
    row.try_into()
}

/// Lists the studio's projects, newest first, optionally only one stage.
pub async fn list(tx: &mut TenantTx, stage: Option<Stage>) -> Result<Vec<Project>, DomainError> {
    let rows: Vec<ProjectRow> = sqlx::query_as(concat!(
        "SELECT ",
        project_columns!(),
        " FROM projects WHERE ($1::text IS NULL OR stage = $1) \
         ORDER BY created_at DESC, id DESC LIMIT 500"
    ))
    .bind(stage.map(Stage::as_str))
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter().map(Project::try_from).collect()
}

/// Loads one project.
pub async fn get(tx: &mut TenantTx, id: ProjectId) -> Result<Project, DomainError> {
    let row: Option<ProjectRow> = sqlx::query_as(concat!(
        "SELECT ",
        project_columns!(),
        " FROM projects WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    row.ok_or(DomainError::NotFound("project"))?.try_into()
}

/// Loads one project and locks it until the transaction ends, so stage
/// changes from the studio and the client are applied one after the other.
async fn get_for_update(tx: &mut TenantTx, id: ProjectId) -> Result<Project, DomainError> {
    let row: Option<ProjectRow> = sqlx::query_as(concat!(
        "SELECT ",
        project_columns!(),
        " FROM projects WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    row.ok_or(DomainError::NotFound("project"))?.try_into()
}

async fn store_stage(tx: &mut TenantTx, id: ProjectId, stage: Stage) -> Result<(), DomainError> {
    sqlx::query("UPDATE projects SET stage = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(stage.as_str())
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Moves a project to `to` on the studio's behalf.
pub async fn move_stage(tx: &mut TenantTx, id: ProjectId, to: Stage) -> Result<Stage, DomainError> {
    let project = get_for_update(tx, id).await?;
    let to = project.stage.studio_move(to)?;
    store_stage(tx, id, to).await?;
    Ok(to)
}

/// Replaces the portal link; the old one stops working when this commits.
pub async fn rotate_portal_token(tx: &mut TenantTx, id: ProjectId) -> Result<Secret, DomainError> {
    let token = secret::random_token(PORTAL_TOKEN_PREFIX);
    let done =
        sqlx::query("UPDATE projects SET portal_token = $2, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(token.expose())
            .execute(tx.conn())
            .await?;
    if done.rows_affected() == 0 {
        return Err(DomainError::NotFound("project"));
    }
    Ok(token)
}

/// A client response as kept in the history.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Response {
    #[sqlx(try_from = "String")]
    pub kind: ResponseKindColumn,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

/// The `kind` column of a response, parsed.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(transparent)]
pub struct ResponseKindColumn(pub ResponseKind);

impl TryFrom<String> for ResponseKindColumn {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse().map(ResponseKindColumn)
    }
}

/// Appends a client response and applies its effect on the stage. Returns the
/// stage after the response.
pub async fn record_response(
    tx: &mut TenantTx,
    id: ProjectId,
    response: &NewResponse,
) -> Result<Stage, DomainError> {
    let project = get_for_update(tx, id).await?;
    let next = response.stage_after(project.stage)?;
    let tenant = tx.tenant_id();
    sqlx::query(
        "INSERT INTO responses (id, tenant_id, project_id, kind, text) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(tenant)
    .bind(id)
    .bind(response.kind.as_str())
    .bind(&response.text)
    .execute(tx.conn())
    .await?;
    if let Some(stage) = next {
        store_stage(tx, id, stage).await?;
    }
    Ok(next.unwrap_or(project.stage))
}

/// The full response history of a project, oldest first.
pub async fn responses(tx: &mut TenantTx, id: ProjectId) -> Result<Vec<Response>, DomainError> {
    Ok(sqlx::query_as(
        "SELECT kind, text, created_at FROM responses WHERE project_id = $1 ORDER BY created_at, id",
    )
    .bind(id)
    .fetch_all(tx.conn())
    .await?)
}

/// Toggles the client's heart on a photo of this project. Returns whether the
/// photo is a favourite afterwards. A photo of another project is not found.
pub async fn toggle_favourite(
    tx: &mut TenantTx,
    project: ProjectId,
    photo: PhotoId,
) -> Result<bool, DomainError> {
    let exists: Option<bool> = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM favourites WHERE photo_id = p.id) FROM photos p \
         WHERE p.id = $1 AND p.project_id = $2 FOR UPDATE OF p",
    )
    .bind(photo)
    .bind(project)
    .fetch_optional(tx.conn())
    .await?;
    let Some(is_favourite) = exists else {
        return Err(DomainError::NotFound("photo"));
    };
    if is_favourite {
        sqlx::query("DELETE FROM favourites WHERE photo_id = $1")
            .bind(photo)
            .execute(tx.conn())
            .await?;
    } else {
        let tenant = tx.tenant_id();
        sqlx::query("INSERT INTO favourites (photo_id, tenant_id, project_id) VALUES ($1, $2, $3)")
            .bind(photo)
            .bind(tenant)
            .bind(project)
            .execute(tx.conn())
            .await?;
    }
    Ok(!is_favourite)
}

/// The favourite photos of a project, in upload order.
pub async fn favourites(
    tx: &mut TenantTx,
    project: ProjectId,
) -> Result<Vec<PhotoId>, DomainError> {
    Ok(sqlx::query_scalar(
        "SELECT f.photo_id FROM favourites f JOIN photos p ON p.id = f.photo_id \
         WHERE f.project_id = $1 ORDER BY p.created_at, p.id",
    )
    .bind(project)
    .fetch_all(tx.conn())
    .await?)
}
