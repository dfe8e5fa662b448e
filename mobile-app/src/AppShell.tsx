import { useRef, useState } from 'react';
import { ActivityIndicator, Pressable, StyleSheet, Text, View } from 'react-native';
import { useSafeAreaInsets } from 'react-native-safe-area-context';

import { TOUCH, useTheme } from './components/theme';
import { ClientContext, EnrolClientContext } from './hooks/ClientContext';
import { useSettings } from './hooks/useSettings';
import { EnrolScreen } from './screens/EnrolScreen';
import { HistoryScreen } from './screens/HistoryScreen';
import { SearchScreen } from './screens/SearchScreen';
import { SettingsScreen } from './screens/SettingsScreen';

const TABS = ['Search', 'History', 'Enrol', 'Settings'] as const;
type Tab = (typeof TABS)[number];

/** Four tabs; the app opens on Settings until an API key is set. */
export function AppShell() {
  const theme = useTheme();
  const insets = useSafeAreaInsets();
  const { settings, client, enrolClient, save } = useSettings();
  const [tab, setTab] = useState<Tab | null>(null);
  const initial = useRef<Tab | null>(null);

  if (!settings) {
    return (
      <View style={[styles.fill, styles.center, { backgroundColor: theme.background }]}>
        <ActivityIndicator accessibilityLabel="Loading" />
      </View>
    );
  }
  // decided once, from the settings found at start: saving a key later does not move the user away
  initial.current ??= settings.apiKey ? 'Search' : 'Settings';
  const current: Tab = tab ?? initial.current;

  return (
    <ClientContext.Provider value={client}>
      <EnrolClientContext.Provider value={enrolClient}>
      <View style={[styles.fill, { backgroundColor: theme.background, paddingTop: insets.top }]}>
        <View style={styles.fill}>
          {/* Search and Enrol stay mounted, so a tab switch neither loses nor cancels their work */}
          <View style={[styles.fill, current !== 'Search' && styles.hidden]}>
            <SearchScreen />
          </View>
          <View style={[styles.fill, current !== 'Enrol' && styles.hidden]}>
            <EnrolScreen />
          </View>
          {current === 'History' ? <HistoryScreen /> : null}
          {current === 'Settings' ? <SettingsScreen settings={settings} onSave={save} /> : null}
        </View>
        <View
          accessibilityRole="tablist"
          style={[
            styles.tabs,
            { backgroundColor: theme.card, borderTopColor: theme.border, paddingBottom: insets.bottom },
          ]}
        >
          {TABS.map((name) => {
            const selected = name === current;
            return (
              <Pressable
                key={name}
                accessibilityRole="tab"
                accessibilityLabel={name}
                aria-selected={selected}
                onPress={() => setTab(name)}
                style={styles.tab}
              >
                <Text style={[styles.tabText, { color: selected ? theme.primary : theme.muted }]}>{name}</Text>
                <View style={[styles.marker, { backgroundColor: selected ? theme.primary : 'transparent' }]} />
              </Pressable>
            );
          })}
        </View>
      </View>
      </EnrolClientContext.Provider>
    </ClientContext.Provider>
  );
}

const styles = StyleSheet.create({
  fill: { flex: 1 },
  center: { alignItems: 'center', justifyContent: 'center' },
  hidden: { display: 'none' },
  tabs: { flexDirection: 'row', borderTopWidth: 1 },
  tab: { flex: 1, minHeight: TOUCH + 12, alignItems: 'center', justifyContent: 'center', gap: 4 },
  tabText: { fontSize: 15, fontWeight: '700' },
  marker: { height: 3, width: 28, borderRadius: 2 },
});
