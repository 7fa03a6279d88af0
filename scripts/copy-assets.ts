import { copyFileSync, mkdirSync } from 'node:fs';

// The compiled app reads its OpenAPI document next to itself (dist/api/openapi.yaml).
mkdirSync('dist/api', { recursive: true });
copyFileSync('api/openapi.yaml', 'dist/api/openapi.yaml');
