-- SHA-256 of each uploaded original, so a second upload of the same bytes to
-- the same project is recognised and not stored twice. NULL for photos
-- uploaded before the column existed.
ALTER TABLE photos ADD COLUMN content_sha256 bytea
    CHECK (content_sha256 IS NULL OR octet_length(content_sha256) = 32);

CREATE INDEX photos_project_content ON photos (project_id, content_sha256)
    WHERE content_sha256 IS NOT NULL;
