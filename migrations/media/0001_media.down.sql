DROP TABLE extractions;
DROP TABLE attachments;
