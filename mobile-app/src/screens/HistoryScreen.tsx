import { useEffect, useState } from 'react';
import { ActivityIndicator, Pressable, StyleSheet, Text, View } from 'react-native';

import { resultWords } from '../api/messages';
import type { Search } from '../api/types';
import { Button } from '../components/Button';
import { GatewayImage } from '../components/GatewayImage';
import { ProblemPanel } from '../components/ProblemPanel';
import { Screen } from '../components/Screen';
import { TOUCH, useTheme } from '../components/theme';
import { useHistory } from '../hooks/useHistory';
import { useSearchDetail } from '../hooks/useSearchDetail';
import { ResultsView } from './ResultsView';

function when(seconds: number): string {
  return new Date(seconds * 1000).toLocaleString();
}

function summary(item: Search): string {
  return resultWords(item.result).summary;
}

/** Past searches, newest first; each reopens its results. */
export function HistoryScreen() {
  const theme = useTheme();
  const { items, loading, error, refresh, loadMore, hasMore } = useHistory();
  const [open, setOpen] = useState<string | null>(null);

  useEffect(() => {
    if (open === null) void refresh();
  }, [open, refresh]);

  if (open !== null) {
    return <SearchDetail searchId={open} onBack={() => setOpen(null)} />;
  }
  return (
    <Screen title="History">
      <Button title="Refresh" kind="secondary" label="Refresh the history" busy={loading} onPress={refresh} />
      {error ? <ProblemPanel error={error} onRetry={refresh} /> : null}
      {!loading && !error && items.length === 0 ? (
        <Text style={{ color: theme.muted }}>No searches yet.</Text>
      ) : null}
      {items.map((item) => (
        <Pressable
          key={item.id}
          testID={`history-${item.id}`}
          accessibilityRole="button"
          accessibilityLabel={`${summary(item)}, ${when(item.created_at)}. Open results`}
          onPress={() => setOpen(item.id)}
          style={[styles.item, { backgroundColor: theme.card, borderColor: theme.border }]}
        >
          <GatewayImage link={item.image_url} label="The searched photo" style={styles.thumb} />
          <View style={styles.itemText}>
            <Text style={[styles.title, { color: theme.text }]}>{summary(item)}</Text>
            <Text style={{ color: theme.muted }}>{when(item.created_at)}</Text>
          </View>
        </Pressable>
      ))}
      {hasMore && items.length > 0 ? (
        <Button title="Load more" kind="secondary" busy={loading} onPress={loadMore} />
      ) : null}
    </Screen>
  );
}

function SearchDetail({ searchId, onBack }: { searchId: string; onBack: () => void }) {
  const { result, error, retry } = useSearchDetail(searchId);
  return (
    <Screen title="Search results">
      <Button title="Back to history" kind="secondary" onPress={onBack} />
      {error ? <ProblemPanel error={error} onRetry={retry} /> : null}
      {!result && !error ? <ActivityIndicator accessibilityLabel="Loading the search" /> : null}
      {result ? <ResultsView result={result} /> : null}
    </Screen>
  );
}

const styles = StyleSheet.create({
  item: { borderWidth: 1, borderRadius: 12, padding: 10, minHeight: TOUCH, gap: 12, flexDirection: 'row' },
  itemText: { flex: 1, gap: 2, justifyContent: 'center' },
  thumb: { width: 56, height: 56, borderRadius: 8, backgroundColor: '#8884' },
  title: { fontSize: 17, fontWeight: '700' },
});
