"""The kinds of family relation and how each reads from the other side: the rule, once."""

from enum import StrEnum


class RelationKind(StrEnum):
    """What the related customer is to this customer ("B is A's parent")."""

    SPOUSE = "spouse"
    PARENT = "parent"
    CHILD = "child"
    SIBLING = "sibling"
    OTHER = "other"


# If B is A's parent, A is B's child; the other kinds read the same from both sides.
INVERSE: dict[RelationKind, RelationKind] = {
    RelationKind.SPOUSE: RelationKind.SPOUSE,
    RelationKind.PARENT: RelationKind.CHILD,
    RelationKind.CHILD: RelationKind.PARENT,
    RelationKind.SIBLING: RelationKind.SIBLING,
    RelationKind.OTHER: RelationKind.OTHER,
}
