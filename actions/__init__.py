"""Herald's custom actions, one module per support topic; rasa-sdk discovers them here."""
