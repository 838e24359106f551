"""The schema of a topology file (``apiVersion: haprotect/v1``, ``kind: Topology``).

These pydantic models check shape and types only; references between items,
defaults that depend on other fields and tier order are the converter's job
(:mod:`haprotect.sources.topology_file.convert`). docs/topology-file.md
describes the format for users.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from haprotect.model.topology import Manager, Replication, Role

API_VERSION = "haprotect/v1"
KIND = "Topology"

Name = Annotated[str, Field(min_length=1)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeSpec(_Spec):
    """A cluster node; ``db1`` alone is short for ``{name: db1}``."""

    name: Name
    online: bool = True

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data}
        if not isinstance(data, dict):
            raise ValueError("expected a node name or a mapping with name and online")
        return data


class ResourceSpec(_Spec):
    """A resource declared explicitly, when the derived one is not enough."""

    id: Name
    agent: Name = "manual"
    parent: Name | None = None
    placement: dict[Name, Role] = Field(default_factory=dict)


class DataSetSpec(_Spec):
    """A data set in a topology file; without ``ha``, it is HA unless replication is ``local``."""

    id: Name
    kind: Name
    location: dict[Name, str] = Field(min_length=1)
    replication: Replication
    primary: Name | None = None
    standbys: list[Name] = Field(default_factory=list)
    ha: bool | None = None
    resource: Name | None = None
    backing: Name | None = None  #: id of the data set of this cluster it lies on

    @field_validator("location", mode="before")
    @classmethod
    def _scalars_as_text(cls, value: Any) -> Any:
        """``port: 5432`` and ``readonly: true`` are written as YAML scalars."""
        if not isinstance(value, dict):
            return value
        return {key: _scalar_text(item) for key, item in value.items()}


class TierSpec(_Spec):
    name: Name
    resources: list[Name] = Field(default_factory=list)
    datasets: list[Name] = Field(default_factory=list)
    depends_on: list[Name] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> TierSpec:
        if not self.resources and not self.datasets:
            raise ValueError("a tier needs resources or datasets")
        return self


class ApplicationSpec(_Spec):
    name: Name
    tiers: list[TierSpec] = Field(min_length=1)


class DependencySpec(_Spec):
    """An extra dependency between resources, beyond those tiers imply."""

    source: Name = Field(alias="from")
    target: Name = Field(alias="to")
    kind: Name = "order"


class ClusterSpec(_Spec):
    name: Name
    manager: Manager = Manager.FILE
    nodes: list[NodeSpec] = Field(min_length=1)
    resources: list[ResourceSpec] = Field(default_factory=list)
    datasets: list[DataSetSpec] = Field(default_factory=list)
    applications: list[ApplicationSpec] = Field(default_factory=list)
    dependencies: list[DependencySpec] = Field(default_factory=list)


class TopologyFileSpec(_Spec):
    """A whole topology file, shape and types checked; the converter checks the rest."""

    api_version: Literal["haprotect/v1"] = Field(alias="apiVersion")
    kind: Literal["Topology"]
    clusters: list[ClusterSpec] = Field(min_length=1)


def _scalar_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value
