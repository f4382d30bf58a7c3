"""Care messages: templates with carrier rules, a queue in the database and its sending worker."""
