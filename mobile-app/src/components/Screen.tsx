import type { ReactNode } from 'react';
import { ScrollView, StyleSheet, Text, View } from 'react-native';

import { useTheme } from './theme';

/** A scrolling page with a heading, at most 720 wide so that it reads well on a desktop too. */
export function Screen({ title, children }: { title: string; children: ReactNode }) {
  const theme = useTheme();
  return (
    <ScrollView
      style={{ backgroundColor: theme.background }}
      contentContainerStyle={styles.outer}
      keyboardShouldPersistTaps="handled"
    >
      <View style={styles.inner}>
        <Text accessibilityRole="header" style={[styles.title, { color: theme.text }]}>
          {title}
        </Text>
        {children}
      </View>
    </ScrollView>
  );
}

const styles = StyleSheet.create({
  outer: { alignItems: 'center', padding: 16, paddingBottom: 32 },
  inner: { width: '100%', maxWidth: 720, gap: 14 },
  title: { fontSize: 26, fontWeight: '800' },
});
