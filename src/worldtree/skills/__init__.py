"""Skills: ``skills/<name>/SKILL.md`` documents that plans and summaries cite; they never execute."""

from worldtree.skills.catalog import Skill, load_skills, sync_sources

__all__ = ["Skill", "load_skills", "sync_sources"]
