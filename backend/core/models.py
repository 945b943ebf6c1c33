import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower


class BaseModel(models.Model):
    """UUID primary key plus creation/update timestamps, shared by every model."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]


class Client(BaseModel):
    name = models.CharField(max_length=255)

    class Meta(BaseModel.Meta):
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ExpertiseArea(BaseModel):
    # unique=True gives a plain index everywhere (case-insensitive on MySQL/MariaDB
    # through the utf8mb4_unicode_ci collation); the Lower() constraint makes it
    # case-insensitive on the other backends (MySQL 8.0.13+, SQLite, PostgreSQL)
    # and drives model validation (full_clean).
    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True, default="")

    class Meta(BaseModel.Meta):
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="core_expertisearea_name_ci_uniq",
                violation_error_message="An expertise area with this name already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Agent(BaseModel):
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    url_n8n = models.URLField("n8n chat webhook URL", max_length=500, blank=True, default="")
    expertise_area = models.ForeignKey(
        ExpertiseArea,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="agents",
    )

    class Meta(BaseModel.Meta):
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Project(BaseModel):
    name = models.CharField(max_length=255)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="projects")
    agents = models.ManyToManyField(
        Agent, through="ProjectAgent", related_name="projects", blank=True
    )
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="projects", blank=True)
    # The project's Superset dashboard: its numeric id in Superset, and the UUID Superset gives the dashboard
    # once embedding is enabled on it (what a guest token and the embedded SDK need). Empty: no dashboard.
    superset_dashboard_id = models.PositiveIntegerField("Superset dashboard id", null=True, blank=True)
    superset_embedded_id = models.CharField("Superset embedded dashboard UUID", max_length=64, blank=True, default="")

    class Meta(BaseModel.Meta):
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ProjectAgent(BaseModel):
    """Link between a project and an agent attached to it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="agent_links")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="project_links")

    class Meta(BaseModel.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["project", "agent"], name="core_projectagent_project_agent_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} / {self.agent}"


class KnowledgeBaseLink(BaseModel):
    """A project's link to a knowledge base held by n8n (external_id = n8n's hash_id)."""

    external_id = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="knowledge_bases")

    class Meta(BaseModel.Meta):
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"],
                name="core_kblink_project_external_id_uniq",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ChatSession(BaseModel):
    session_key = models.CharField(max_length=255, db_index=True)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="chat_sessions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_sessions"
    )
    data = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return self.session_key
