"""The routing service: teams, notification targets and the choice of who hears about an alert."""
