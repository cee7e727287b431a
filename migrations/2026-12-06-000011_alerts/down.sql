DROP TABLE alert_notifications;
DROP TABLE alert_events;
DROP TABLE alert_evaluations;
DROP TABLE alert_channels;
DROP TABLE alert_rules;
