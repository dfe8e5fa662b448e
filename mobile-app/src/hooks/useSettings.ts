import { useCallback, useEffect, useMemo, useState } from 'react';

import { createClient, type GatewayApi } from '../api/client';
import { loadSettings, saveSettings, type StoredSettings } from '../storage/settings';

export interface SettingsState {
  settings: StoredSettings | null;
  client: GatewayApi | null;
  save: (next: StoredSettings) => Promise<void>;
}

/** Settings loaded once from storage, and a client built from them (null until configured). */
export function useSettings(): SettingsState {
  const [settings, setSettings] = useState<StoredSettings | null>(null);

  useEffect(() => {
    let live = true;
    loadSettings().then((loaded) => live && setSettings(loaded));
    return () => {
      live = false;
    };
  }, []);

  const save = useCallback(async (next: StoredSettings) => {
    const clean = { baseUrl: next.baseUrl.trim(), apiKey: next.apiKey.trim() };
    await saveSettings(clean);
    setSettings(clean);
  }, []);

  const client = useMemo(
    () => (settings && settings.baseUrl ? createClient(settings) : null),
    [settings],
  );

  return { settings, client, save };
}
