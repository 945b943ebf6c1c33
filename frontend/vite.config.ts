/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Where the dev server forwards /api/* (inside compose: the backend service).
const backendUrl = process.env.BACKEND_URL || 'http://backend:8000';

// Polling makes file watching work on bind mounts (Docker Desktop, VMs, some
// network filesystems) where inotify events are not delivered. On by default;
// CHOKIDAR_USEPOLLING=0/false turns it off.
const pollingEnv = (process.env.CHOKIDAR_USEPOLLING ?? '').trim().toLowerCase();
const usePolling = !['0', 'false', 'no', 'off'].includes(pollingEnv);
const pollInterval = Number(process.env.CHOKIDAR_INTERVAL) || 300;

// Vite rejects unknown Host headers (DNS-rebinding protection). localhost and
// IP addresses are always allowed; add the compose service name and anything
// listed in VITE_ALLOWED_HOSTS (comma separated).
const allowedHosts = [
  'frontend',
  ...(process.env.VITE_ALLOWED_HOSTS ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean),
];

export default defineConfig({
  plugins: [react()],
  server: {
    host: '0.0.0.0',
    port: 8080,
    strictPort: true,
    allowedHosts,
    watch: {
      usePolling,
      interval: pollInterval,
    },
    proxy: {
      '/api': {
        target: backendUrl,
        // Keep the browser's Host header (Django ALLOWED_HOSTS / CSRF origin
        // checks then see the same host as in prod behind nginx).
        changeOrigin: false,
        xfwd: true,
      },
    },
  },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
  },
});
