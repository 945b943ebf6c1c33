from django.contrib import admin

from . import models


class ProjectAgentInline(admin.TabularInline):
    model = models.ProjectAgent
    extra = 0


class KnowledgeBaseLinkInline(admin.TabularInline):
    model = models.KnowledgeBaseLink
    extra = 0


@admin.register(models.Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)


@admin.register(models.ExpertiseArea)
class ExpertiseAreaAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)


@admin.register(models.Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("name", "expertise_area", "url_n8n")
    search_fields = ("name",)


@admin.register(models.Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "client", "superset_dashboard_id")
    search_fields = ("name", "client__name")
    filter_horizontal = ("users",)
    inlines = [ProjectAgentInline, KnowledgeBaseLinkInline]


@admin.register(models.KnowledgeBaseLink)
class KnowledgeBaseLinkAdmin(admin.ModelAdmin):
    list_display = ("name", "external_id", "project")
    search_fields = ("name", "external_id")


@admin.register(models.ChatSession)
class ChatSessionAdmin(admin.ModelAdmin):
    list_display = ("session_key", "agent", "user", "updated_at")
    search_fields = ("session_key",)
