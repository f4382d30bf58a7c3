"""Family relations between customer files (家庭成员), and the family's purchases together."""
