"""Local stand-ins for outside platforms (Telegram, Slack) speaking their real HTTP protocol."""
