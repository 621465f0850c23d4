-- One photo per project for the same bytes. The plain index left a race:
-- parallel uploads of one file each found no earlier photo and each stored a
-- new one. A unique index makes the database reject the second row, and the
-- upload then answers with the first photo as a duplicate.
--
-- Databases that ran before this may already hold such duplicates. Their rows
-- are kept, because a studio may have shared, hearted or discussed any of
-- them; only the hash is cleared on all but the oldest photo of each group,
-- so a later upload of the same bytes finds the oldest one. Migrations run
-- as a superuser, which row-level security does not restrict, so this sees
-- the rows of every tenant.
UPDATE photos
SET content_sha256 = NULL
WHERE content_sha256 IS NOT NULL
  AND id NOT IN (
      SELECT DISTINCT ON (project_id, content_sha256) id
      FROM photos
      WHERE content_sha256 IS NOT NULL
      ORDER BY project_id, content_sha256, created_at, id
  );

DROP INDEX photos_project_content;

CREATE UNIQUE INDEX photos_project_content ON photos (project_id, content_sha256)
    WHERE content_sha256 IS NOT NULL;

-- When the thumbnail job last wrote the photo's renditions. Rendition URLs
-- carry it as a version, because they are cached as immutable for a year and
-- a regenerated rendition must get a new URL to reach clients. NULL for
-- photos that have no renditions or got them before the column existed.
ALTER TABLE photos ADD COLUMN rendered_at timestamptz;
