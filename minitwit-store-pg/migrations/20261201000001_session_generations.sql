-- Sessions that can end: each user's session generation (absent means 0). A session
-- cookie names the generation it was issued under; bumping it signs the user out
-- everywhere. Rows go with their user.
CREATE TABLE session_generations (
    user_id    BIGINT PRIMARY KEY,
    generation BIGINT NOT NULL,
    CONSTRAINT session_generations_user_id_fkey
        FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
